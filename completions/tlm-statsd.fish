complete -c tlm-statsd -l listen -d 'Where to listen: udp://HOST:PORT, tcp://HOST:PORT, unix://PATH (repeatable; IPv6 as udp://[::1]:8125). Default udp://127.0.0.1:8125 unless --stdin or --secure-listen' -r
complete -c tlm-statsd -l workers -d 'Receive threads per UDP listener, each with its own SO_REUSEPORT socket' -r
complete -c tlm-statsd -l rcvbuf -d 'Receive buffer to ask for per socket, in bytes (K, M, G suffixes); what the kernel grants is logged' -r
complete -c tlm-statsd -l flush -d 'Flush interval (and aggregation window), aligned to the wall clock' -r
complete -c tlm-statsd -l sanitize -d 'Name sanitizing' -r -f -a "etsy\t'Etsy statsd\'s rule: whitespace becomes `_`, `/` becomes `-`, other bytes than letters, digits, `_`, `-`, `.` are dropped'
none\t'Keep names as sent (they must be UTF-8)'"
complete -c tlm-statsd -l max-series -d 'Refuse new series beyond this many (counted and logged), bounding memory' -r
complete -c tlm-statsd -l quantiles -d 'Quantiles of timers and distributions, comma-separated, each in [0, 1]' -r
complete -c tlm-statsd -l buckets -d 'Write timers as histograms with these bucket upper bounds instead of summaries' -r
complete -c tlm-statsd -l exact-limit -d 'Timer values per series and flush kept for exact quantiles; beyond, a sketch with --sketch-error relative error (lines marked "estimated":true)' -r
complete -c tlm-statsd -l sketch-error -d 'Relative error bound of the quantile sketch' -r
complete -c tlm-statsd -l set-limit -d 'Set members per series and flush counted exactly; beyond, HyperLogLog' -r
complete -c tlm-statsd -l style -d 'Output style: tlm metrics, or Etsy statsd\'s names and values (stats.X, stats_counts.X, stats.timers.X.upper_90, stats.gauges.X, stats.sets.X.count)' -r -f -a "tlm\t'tlm metrics: sums, gauge statistics, summaries, set sizes (docs/aggregation.md)'
statsd\t'Etsy statsd\'s stat set as gauges, under the names its Graphite backend writes'"
complete -c tlm-statsd -l percent-threshold -d 'statsd style: Etsy\'s percentThreshold, comma-separated, each in [-100, 100]' -r
complete -c tlm-statsd -l legacy-namespace -d 'statsd style: Etsy\'s graphite.legacyNamespace (false: stats.counters.X.rate|count)' -r -f -a "true\t''
false\t''"
complete -c tlm-statsd -l expire -d 'Forget a series after this long without data (Brubeck\'s expire): it is no longer written, and a later +N gauge starts from 0' -r
complete -c tlm-statsd -l secure-listen -d 'Listen for Brubeck statsd-secure signed datagrams (HMAC-SHA256) here (repeatable)' -r
complete -c tlm-statsd -l hmac-key-file -d 'The HMAC key for signed datagrams: the file\'s bytes as they are (a trailing newline is part of the key)' -r -F
complete -c tlm-statsd -l max-drift -d 'Signed datagrams older than this are refused (and newer than now)' -r
complete -c tlm-statsd -l http -d 'Serve the operator\'s HTTP API here: GET /ping, /stats, /metric/NAME; POST /expire/NAME, /metrics (Funnel agent JSON)' -r
complete -c tlm-statsd -l dump-file -d 'Where SIGUSR2 writes every known series with its kind, as NDJSON' -r -F
complete -c tlm-statsd -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-statsd -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-statsd -l stdin -d 'Read statsd lines from standard input; end of input flushes and exits'
complete -c tlm-statsd -l delete-idle -d 'Write a series only in flushes in which it got data (Etsy\'s deleteIdleStats). By default, as Etsy does, a series seen before is written every flush: counters 0, timers count 0, gauges their last value, sets 0'
complete -c tlm-statsd -l self-metrics -d 'Also write tlm-statsd\'s own counts each flush (statsd.lines, statsd.bad_lines by reason, statsd.kernel_drops, statsd.flush_seconds, statsd.series)'
complete -c tlm-statsd -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-statsd -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-statsd -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-statsd -s V -l version -d 'Print version'
