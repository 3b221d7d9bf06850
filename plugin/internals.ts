// Private fields of the libraries the plugin cooperates with, read by their symbols' descriptions since none
// is exported: fastify's secondary servers ('fastify.serverBindings'), pino's destination ('pino.stream'),
// the WebSocket `ws` keeps on its socket ('websocket'). Each caller copes with `undefined`.

/** The value under the first symbol with this description, on the object or along its prototype chain. */
export function symbolValue (target: object, description: string): unknown {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
    const key = Object.getOwnPropertySymbols(o).find(s => s.description === description)
    if (key !== undefined) return (o as Record<symbol, unknown>)[key]
  }
  return undefined
}
