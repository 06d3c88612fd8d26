import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { prebuiltAppConfig } from '@mlc-ai/web-llm'
import { describe, expect, it } from 'vitest'
import { listModels } from '../../scripts/serve-plugin.ts'
import { ALL_MINILM_L6_V2, MODEL2VEC_TOKENIZATION, SENTENCE_TRANSFORMER_TOKENIZATION, defaultEmbeddingSpec, specOfEntry, tokenizationFor } from '../../src/core/embedding/models.ts'
import { InvalidModelIndexError } from '../../src/core/models/errors.ts'
import { assessFit, buildCatalog, pickAuto, type FitHardware } from '../../src/core/models/fit.ts'
import { LOCAL_INDEX_LIMITS, parseLocalModelIndex } from '../../src/core/models/local-index.ts'
import { webLlmEntries, webLlmLoadProgress, type WebLlmModelRecord } from '../../src/core/models/webllm.ts'
import type { ModelEntry } from '../../src/core/models/catalog.ts'
import { GiB, MiB, gpu } from './fixtures.ts'

const INDEX_URL = 'http://127.0.0.1:4173/models/index.json'

const SWIFTSHADER = gpu({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader', isFallbackAdapter: true, shaderF16: false, maxBufferSize: GiB })

function hw (overrides: Partial<FitHardware> = {}): FitHardware {
  return { webgpu: gpu(), wasmSimd: true, ...overrides }
}

function record (id: string, overrides: Partial<WebLlmModelRecord> = {}): WebLlmModelRecord {
  return { model: `https://huggingface.co/mlc-ai/${id}`, model_id: id, model_lib: `https://example.org/${id}-webgpu.wasm`, ...overrides }
}

const STORIES: ModelEntry = {
  id: 'stories260K', task: 'chat', engine: 'wllama', origin: 'local', url: 'http://127.0.0.1:4173/models/stories260K-gguf/stories260K.gguf', sizeBytes: 1_185_376, needsShaderF16: false
}
const EMBEDDER: ModelEntry = {
  id: 'model2vec-64d', task: 'embedding', engine: 'onnx', origin: 'local', url: 'http://127.0.0.1:4173/models/model2vec-64d/m.onnx', sizeBytes: 90 * MiB, needsShaderF16: false
}

describe('web-llm records as catalog entries', () => {
  it('maps id, URL, memory, features, context window and task', () => {
    const [chat, f16, embed] = webLlmEntries([
      record('Llama-3.2-1B-Instruct-q4f32_1-MLC', { vram_required_MB: 1128.82, low_resource_required: true, overrides: { context_window_size: 4096 } }),
      record('Phi-3-mini-q4f16_1-MLC', { vram_required_MB: 3000, required_features: ['shader-f16'] }),
      record('snowflake-arctic-embed-s-q0f32-MLC-b4', { model_type: 1, vram_required_MB: 240 })
    ])
    expect(chat).toEqual({
      id: 'Llama-3.2-1B-Instruct-q4f32_1-MLC',
      task: 'chat',
      engine: 'webllm',
      origin: 'remote',
      url: 'https://huggingface.co/mlc-ai/Llama-3.2-1B-Instruct-q4f32_1-MLC',
      needsShaderF16: false,
      lowResource: true,
      vramRequiredMiB: 1129,
      contextWindow: 4096
    })
    expect(f16?.needsShaderF16).toBe(true)
    expect(f16?.lowResource).toBe(false)
    expect(embed?.task).toBe('embedding')
  })

  it('an f16 quantization needs shader-f16 even when required_features does not say so', () => {
    const [a, b, c] = webLlmEntries([record('Llama-3.2-1B-Instruct-q4f16_1-MLC'), record('Llama-3.2-1B-Instruct-q0f16-MLC'), record('Llama-3.2-1B-Instruct-q0f32-MLC')])
    expect([a?.needsShaderF16, b?.needsShaderF16, c?.needsShaderF16]).toEqual([true, true, false])
  })

  it('leaves out what is not a usable record', () => {
    const entries = webLlmEntries([null, 42, { model_id: 'x' }, record('bad id with spaces'), record('ok-MLC', { vram_required_MB: -5, overrides: { context_window_size: Number.NaN } })])
    expect(entries.map(e => e.id)).toEqual(['ok-MLC'])
    expect(entries[0]?.vramRequiredMiB).toBeUndefined()
    expect(entries[0]?.contextWindow).toBeUndefined()
  })

  it("reads web-llm's real prebuilt list", () => {
    const entries = webLlmEntries(prebuiltAppConfig.model_list)
    expect(entries.length).toBe(prebuiltAppConfig.model_list.length)
    expect(entries.every(e => e.engine === 'webllm' && e.origin === 'remote' && (e.vramRequiredMiB ?? 0) > 0)).toBe(true)
    expect(entries.find(e => e.id === 'Llama-3.2-1B-Instruct-q4f16_1-MLC')?.needsShaderF16).toBe(true)
    expect(entries.find(e => e.id === 'Llama-3.2-1B-Instruct-q4f32_1-MLC')?.needsShaderF16).toBe(false)
  })

  it('load progress is the fraction web-llm reports, clamped', () => {
    expect(webLlmLoadProgress('m', { progress: 0.25, text: 'Fetching param cache[1/4]' })).toEqual({ model: 'm', loaded: 0.25, total: 1, text: 'Fetching param cache[1/4]' })
    expect(webLlmLoadProgress('m', { progress: 3, text: '' }).loaded).toBe(1)
    expect(webLlmLoadProgress('m', { progress: Number.NaN, text: '' }).loaded).toBe(0)
  })
})

describe('what fits this device', () => {
  const [f16Model, f32Model, bigModel] = webLlmEntries([
    record('Small-q4f16_1-MLC', { vram_required_MB: 900, required_features: ['shader-f16'] }),
    record('Small-q4f32_1-MLC', { vram_required_MB: 1100 }),
    record('Large-q4f32_1-MLC', { vram_required_MB: 6000 })
  ]) as [ModelEntry, ModelEntry, ModelEntry]

  it('shader-f16 models need an adapter with shader-f16', () => {
    expect(assessFit(f16Model, hw())).toEqual({ fits: true })
    const fit = assessFit(f16Model, hw({ webgpu: gpu({ shaderF16: false }) }))
    expect(fit.fits).toBe(false)
    expect(fit.reason).toMatch(/shader-f16/)
    expect(assessFit(f32Model, hw({ webgpu: gpu({ shaderF16: false }) })).fits).toBe(true)
  })

  it('compares vram_required_MB with the usable memory estimate', () => {
    // 2 GiB max buffer: about 4096 MiB usable; 8 GiB of device memory does not lower it.
    expect(assessFit(bigModel, hw({ deviceMemoryGiB: 8 }))).toEqual({ fits: false, reason: 'it needs 6000 MiB of GPU memory and about 4096 MiB is usable here' })
    expect(assessFit(bigModel, hw({ webgpu: gpu({ maxBufferSize: 4 * GiB }) })).fits).toBe(true)
    // A 2 GiB device shares its memory with the GPU: only 1024 MiB, too little for the f32 1B model.
    expect(assessFit(f32Model, hw({ deviceMemoryGiB: 2 })).fits).toBe(false)
  })

  it('a software adapter (SwiftShader) runs no web-llm model, whatever its limits', () => {
    const fit = assessFit(f32Model, hw({ webgpu: SWIFTSHADER }))
    expect(fit.fits).toBe(false)
    expect(fit.reason).toMatch(/SwiftShader/)
  })

  it('without WebGPU web-llm models do not fit and the probe error is the reason', () => {
    const fit = assessFit(f32Model, hw({ webgpu: null, webgpuError: 'this browser has no WebGPU' }))
    expect(fit).toEqual({ fits: false, reason: 'web-llm needs WebGPU and there is no adapter (this browser has no WebGPU)' })
  })

  it('local wllama models fit without any GPU, but need WASM SIMD and memory', () => {
    expect(assessFit(STORIES, hw({ webgpu: null }))).toEqual({ fits: true })
    expect(assessFit(STORIES, hw({ webgpu: SWIFTSHADER, deviceMemoryGiB: 1 }))).toEqual({ fits: true })
    expect(assessFit(STORIES, hw({ wasmSimd: false })).reason).toMatch(/SIMD/)
    expect(assessFit({ ...STORIES, sizeBytes: 3 * GiB }, hw({ deviceMemoryGiB: 8 })).reason).toMatch(/2 GiB/)
    expect(assessFit({ ...STORIES, sizeBytes: 1.5 * GiB }, hw({ deviceMemoryGiB: 2 })).fits).toBe(false)
  })

  it('the catalog carries fit, reason, downloaded and loaded', () => {
    const catalog = buildCatalog([STORIES, f32Model], hw({ webgpu: SWIFTSHADER }), { downloaded: new Set(['stories260K']), loaded: new Set(['stories260K']) })
    expect(catalog.map(m => [m.id, m.fits, m.downloaded, m.loaded])).toEqual([['stories260K', true, true, true], ['Small-q4f32_1-MLC', false, false, false]])
    expect(catalog[0]?.reason).toBeUndefined()
    expect(catalog[1]?.reason).toMatch(/SwiftShader/)
  })
})

describe('pickAuto', () => {
  const remote = webLlmEntries([
    record('Small-q4f16_1-MLC', { vram_required_MB: 900, required_features: ['shader-f16'] }),
    record('Small-q4f32_1-MLC', { vram_required_MB: 1100 }),
    record('Large-q4f32_1-MLC', { vram_required_MB: 6000 }),
    record('Huge-embed-MLC', { vram_required_MB: 3000, model_type: 1 })
  ])
  const all = [STORIES, EMBEDDER, ...remote]

  it('takes the largest chat model that fits', () => {
    expect(pickAuto(buildCatalog(all, hw(), { downloaded: new Set(), loaded: new Set() }))?.id).toBe('Small-q4f32_1-MLC')
    expect(pickAuto(buildCatalog(all, hw({ webgpu: gpu({ maxBufferSize: 4 * GiB }) }), { downloaded: new Set(), loaded: new Set() }))?.id).toBe('Large-q4f32_1-MLC')
  })

  it('without a usable GPU it is the local GGUF model (never the embedding model)', () => {
    for (const device of [hw({ webgpu: null }), hw({ webgpu: SWIFTSHADER })]) {
      expect(pickAuto(buildCatalog(all, device, { downloaded: new Set(), loaded: new Set() }))?.id).toBe('stories260K')
    }
  })

  it('nothing fits: undefined; equal sizes: the first id', () => {
    expect(pickAuto(buildCatalog(all, hw({ webgpu: null, wasmSimd: false }), { downloaded: new Set(), loaded: new Set() }))).toBeUndefined()
    const twins = buildCatalog([{ ...STORIES, id: 'b-model' }, { ...STORIES, id: 'a-model' }], hw(), { downloaded: new Set(), loaded: new Set() })
    expect(pickAuto(twins)?.id).toBe('a-model')
  })
})

describe('the local model index', () => {
  const valid = {
    version: 1,
    models: [
      { id: 'stories260K', task: 'chat', format: 'gguf', url: '/models/stories260K-gguf/stories260K.gguf', sizeBytes: 1185376 },
      { id: 'model2vec-64d', task: 'embedding', format: 'onnx', url: '/models/model2vec-64d/m.onnx', tokenizerUrl: '/models/model2vec-64d/tokenizer.json', sizeBytes: 1361740, dims: 64 }
    ]
  }

  it('reads entries and resolves their URLs against the index', () => {
    const { entries, rejected } = parseLocalModelIndex(JSON.stringify(valid), INDEX_URL)
    expect(rejected).toEqual([])
    expect(entries).toEqual([
      { id: 'stories260K', task: 'chat', engine: 'wllama', origin: 'local', url: 'http://127.0.0.1:4173/models/stories260K-gguf/stories260K.gguf', sizeBytes: 1185376, needsShaderF16: false },
      {
        id: 'model2vec-64d',
        task: 'embedding',
        engine: 'onnx',
        origin: 'local',
        url: 'http://127.0.0.1:4173/models/model2vec-64d/m.onnx',
        tokenizerUrl: 'http://127.0.0.1:4173/models/model2vec-64d/tokenizer.json',
        sizeBytes: 1361740,
        dims: 64,
        needsShaderF16: false
      }
    ])
  })

  it('refuses a document that is oversize, not JSON, of another version or shape', () => {
    const bad = [
      ' '.repeat(LOCAL_INDEX_LIMITS.chars + 1),
      '{"version": 1, "models": [',
      '[]',
      'null',
      JSON.stringify({ ...valid, version: 2 }),
      JSON.stringify({ version: '1', models: [] }),
      JSON.stringify({ version: 1, models: {} }),
      JSON.stringify({ version: 1, models: Array.from({ length: LOCAL_INDEX_LIMITS.models + 1 }, () => 0) })
    ]
    for (const text of bad) expect(() => parseLocalModelIndex(text, INDEX_URL)).toThrow(InvalidModelIndexError)
  })

  it('skips each malformed entry with its reason and keeps the rest', () => {
    const good = valid.models[0]
    const models = [
      good,
      'a string',
      { ...good, id: '../../etc/passwd' },
      { ...good, id: 'x'.repeat(200) },
      { ...good, id: 'evil', url: 'https://evil.example/x.gguf' },
      { ...good, id: 'proto', url: 'javascript:alert(1)' },
      { ...good, id: 'long-url', url: `/models/${'a'.repeat(LOCAL_INDEX_LIMITS.urlChars)}` },
      { ...good, id: 'neg', sizeBytes: -1 },
      { ...good, id: 'frac', sizeBytes: 1.5 },
      { ...good, id: 'huge', sizeBytes: 2 ** 60 },
      { ...good, id: 'what', task: 'vision' },
      { ...good, id: 'mixed', format: 'onnx' },
      { ...valid.models[1], id: 'no-tokenizer', tokenizerUrl: undefined },
      { ...valid.models[1], id: 'bad-dims', dims: 0 },
      { ...valid.models[1], id: 'bad-type', modelType: 'a b/../c' },
      { ...good }
    ]
    const { entries, rejected } = parseLocalModelIndex(JSON.stringify({ version: 1, models }), INDEX_URL)
    expect(entries.map(e => e.id)).toEqual(['stories260K'])
    expect(rejected).toHaveLength(models.length - 1)
    expect(rejected[0]).toBe('models[1]: not an object')
    expect(rejected.find(r => r.startsWith('models[4]'))).toMatch(/leaves the origin/)
    expect(rejected.find(r => r.startsWith('models[14]'))).toMatch(/modelType/)
    expect(rejected.at(-1)).toBe('models[15]: duplicate id stories260K')
  })

  it('the server lists a models directory in the shape the page accepts', () => {
    const root = mkdtempSync(join(tmpdir(), 'hs-models-'))
    mkdirSync(join(root, 'tiny-gguf'))
    writeFileSync(join(root, 'tiny-gguf', 'tiny.gguf'), Buffer.alloc(1000))
    writeFileSync(join(root, 'tiny-gguf', 'SOURCE.md'), 'notes')
    mkdirSync(join(root, 'embedder'))
    writeFileSync(join(root, 'embedder', 'model.onnx'), Buffer.alloc(300))
    writeFileSync(join(root, 'embedder', 'tokenizer.json'), '{}')
    writeFileSync(join(root, 'embedder', 'config.json'), JSON.stringify({ hidden_dim: 64, model_type: 'model2vec' }))
    mkdirSync(join(root, 'onnx-without-tokenizer'))
    writeFileSync(join(root, 'onnx-without-tokenizer', 'model.onnx'), Buffer.alloc(10))
    writeFileSync(join(root, 'loose.gguf'), Buffer.alloc(10))

    const listing = listModels(root)
    expect(listing).toEqual({
      version: 1,
      models: [
        { id: 'embedder', task: 'embedding', format: 'onnx', url: '/models/embedder/model.onnx', tokenizerUrl: '/models/embedder/tokenizer.json', sizeBytes: 302, dims: 64, modelType: 'model2vec' },
        { id: 'tiny', task: 'chat', format: 'gguf', url: '/models/tiny-gguf/tiny.gguf', sizeBytes: 1000 }
      ]
    })
    const { entries, rejected } = parseLocalModelIndex(JSON.stringify(listing), INDEX_URL)
    expect(rejected).toEqual([])
    expect(entries.map(e => [e.id, e.engine, e.url])).toEqual([
      ['embedder', 'onnx', 'http://127.0.0.1:4173/models/embedder/model.onnx'],
      ['tiny', 'wllama', 'http://127.0.0.1:4173/models/tiny-gguf/tiny.gguf']
    ])
  })
})

describe('the embedding model of a catalog', () => {
  const valid2vec = { id: 'model2vec-64d', task: 'embedding', format: 'onnx', url: '/models/model2vec-64d/m.onnx', tokenizerUrl: '/models/model2vec-64d/tokenizer.json', sizeBytes: 1361740, dims: 64 }
  const local = (over: Partial<ModelEntry> = {}): ModelEntry => ({
    id: 'model2vec-64d', task: 'embedding', engine: 'onnx', origin: 'local', url: 'http://127.0.0.1:4173/models/model2vec-64d/m.onnx',
    tokenizerUrl: 'http://127.0.0.1:4173/models/model2vec-64d/tokenizer.json', dims: 64, modelType: 'model2vec', needsShaderF16: false, ...over
  })

  it('carries config.json model_type from the index into the entry', () => {
    const { entries } = parseLocalModelIndex(JSON.stringify({ version: 1, models: [{ ...valid2vec, modelType: 'model2vec' }] }), INDEX_URL)
    expect(entries[0]?.modelType).toBe('model2vec')
    expect(parseLocalModelIndex(JSON.stringify({ version: 1, models: [valid2vec] }), INDEX_URL).entries[0]?.modelType).toBeUndefined()
  })

  it('maps model2vec to its own tokenization and any other family to mean-pooled sentence-transformers', () => {
    expect(tokenizationFor('model2vec')).toBe(MODEL2VEC_TOKENIZATION)
    expect(tokenizationFor('bert')).toBe(SENTENCE_TRANSFORMER_TOKENIZATION)
    expect(tokenizationFor(undefined)).toBe(SENTENCE_TRANSFORMER_TOKENIZATION)
    expect(specOfEntry(local())).toEqual({ id: 'model2vec-64d', url: local().url, tokenizerUrl: local().tokenizerUrl, dims: 64, tokenization: MODEL2VEC_TOKENIZATION })
    expect(specOfEntry(local({ modelType: 'bert', dims: 384 }))?.tokenization).toBe(SENTENCE_TRANSFORMER_TOKENIZATION)
    expect(specOfEntry(local({ dims: undefined }))).toBeUndefined()
    expect(specOfEntry(STORIES)).toBeUndefined()
  })

  it('picks the first local embedding model, else all-MiniLM-L6-v2', () => {
    expect(defaultEmbeddingSpec([STORIES, local()]).id).toBe('model2vec-64d')
    expect(defaultEmbeddingSpec([STORIES, local({ origin: 'remote' })])).toBe(ALL_MINILM_L6_V2)
    expect(defaultEmbeddingSpec([])).toBe(ALL_MINILM_L6_V2)
  })
})
