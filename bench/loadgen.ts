// One load generator process per server (overhead bench, --loadgen=processes): autocannon against one URL,
// counting 200 responses; answers each IPC 'snap' with the count so far.
import autocannon from 'autocannon'

const [url = '', connections = '8', pipelining = '1', rate = '0', duration = '60'] = process.argv.slice(2)
let ok = 0
let errors = 0
const load = autocannon({
  url,
  connections: Number(connections),
  pipelining: Number(pipelining),
  duration: Number(duration),
  ...(Number(rate) > 0 ? { overallRate: Number(rate) } : {})
})
load.on('response', (_client: unknown, status: number) => { if (status === 200) ok++; else errors++ })
load.on('reqError', () => { errors++ })
process.on('message', msg => {
  if (msg === 'snap') process.send?.({ ok, errors })
  else if (msg === 'stop') { load.stop(); process.exit(0) }
})
// The bench went away: stop at once rather than load a dead port for an hour.
process.on('disconnect', () => process.exit(0))
process.send?.({ ok, errors })
