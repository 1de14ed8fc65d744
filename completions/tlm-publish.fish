complete -c tlm-publish -s f -l format -d 'Output format on stdout' -r -f -a "ndjson\t'tlm metric v1, one JSON object per line'
graphite\t'Graphite plaintext protocol (carbon), tagged series'
influx\t'InfluxDB line protocol, nanosecond timestamps'
prometheus\t'Prometheus text exposition format 0.0.4'"
complete -c tlm-publish -s i -l input -d 'Input file or quoted glob (repeatable, read in order); stdin when none or `-`' -r
complete -c tlm-publish -l max-line-bytes -d 'Skip lines longer than this many bytes (counted and logged as bad lines)' -r
complete -c tlm-publish -l threads -d 'Threads decoding input (default: one per core); output order never depends on it' -r
complete -c tlm-publish -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-publish -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-publish -l strict -d 'Exit with status 65 at the first bad input line instead of skipping it'
complete -c tlm-publish -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-publish -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-publish -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-publish -s V -l version -d 'Print version'
