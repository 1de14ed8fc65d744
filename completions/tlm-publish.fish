complete -c tlm-publish -s f -l format -d 'Output format on stdout, and for file: destinations without ?format=' -r -f -a "ndjson\t'tlm metric v1, one JSON object per line'
graphite\t'Graphite plaintext protocol (carbon), tagged series'
influx\t'InfluxDB line protocol, nanosecond timestamps'
prometheus\t'Prometheus text exposition format 0.0.4'
statsd\t'statsd lines (DogStatsD tags)'
csv\t'CSV with a header row: ts,name,kind,value,tags'"
complete -c tlm-publish -s i -l input -d 'Input file or quoted glob (repeatable, read in order); stdin when none or `-`' -r
complete -c tlm-publish -l batch -d 'Points per batch (one request, frame or write)' -r
complete -c tlm-publish -l linger -d 'Longest a batch waits to fill before it is sent' -r
complete -c tlm-publish -l concurrency -d 'Lanes per destination sending in parallel; each series stays on one lane, in order' -r
complete -c tlm-publish -l timeout -d 'Connect, write and request timeout' -r
complete -c tlm-publish -l retries -d 'Failed attempts before a destination\'s queue moves from memory to --spool' -r
complete -c tlm-publish -l backoff -d 'First retry delay; it doubles per attempt (with jitter) up to --max-backoff' -r
complete -c tlm-publish -l max-backoff -d 'Longest delay between retries' -r
complete -c tlm-publish -l buffer -d 'Memory for batches waiting per destination; without --spool, input waits when full' -r
complete -c tlm-publish -l spool -d 'Directory for batches that do not fit in memory or outlast --retries; replayed in order' -r -F
complete -c tlm-publish -l spool-max -d 'Disk budget per destination; beyond it batches are dropped and logged as errors' -r
complete -c tlm-publish -l drain-timeout -d 'At end of input or SIGTERM, how long to keep delivering before spooling (or losing) the rest' -r
complete -c tlm-publish -l replay-window -d 'How much recently sent data TCP destinations resend after a reconnect (0s: none)' -r
complete -c tlm-publish -l replay-max -d 'Upper bound on the replay window\'s memory per lane' -r
complete -c tlm-publish -l serve -d 'Serve the latest value of every series for Prometheus to scrape at http://ADDR/metrics' -r
complete -c tlm-publish -l serve-ttl -d 'Drop a series from --serve when no new value came for this long' -r
complete -c tlm-publish -s H -l header -d 'Extra header for http(s):// destinations, `NAME: VALUE` (repeatable)' -r
complete -c tlm-publish -l token-file -d 'File holding a bearer token (InfluxDB 2: its API token) for HTTP destinations' -r -F
complete -c tlm-publish -l hmac-key-file -d 'Key file for signing statsd:// datagrams (Brubeck statsd-secure HMAC-SHA256)' -r -F
complete -c tlm-publish -l max-line-bytes -d 'Skip lines longer than this many bytes (counted and logged as bad lines)' -r
complete -c tlm-publish -l threads -d 'Threads decoding input (default: one per core); output order never depends on it' -r
complete -c tlm-publish -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-publish -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-publish -l dry-run -d 'Print each payload exactly as it would be sent, to stdout, and send nothing'
complete -c tlm-publish -l strict -d 'Exit with status 65 at the first bad input line instead of skipping it'
complete -c tlm-publish -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-publish -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-publish -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-publish -s V -l version -d 'Print version'
