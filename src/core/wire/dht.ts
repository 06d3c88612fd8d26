/** The DHT's protocol id: one per network, so DHTs of different networks never merge. */
export function dhtProtocol (network: string): string {
  return `/hyperspace/${network}/kad/1.0.0`
}
