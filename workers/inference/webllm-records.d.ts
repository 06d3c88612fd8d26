// Built by scripts/webllm-records.ts: web-llm's prebuilt model records, checked where they are read.
declare module 'virtual:webllm-records' {
  const records: unknown[]
  export default records
}
