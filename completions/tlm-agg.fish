complete -c tlm-agg -s w -l window -d 'Window length (e.g. 10s, 1m, 500ms), aligned to the Unix epoch' -r
complete -c tlm-agg -l every -d 'Sliding windows: start a window of --window length every DURATION (must divide it)' -r
complete -c tlm-agg -l lateness -d 'How long after a window\'s end its points are still accepted (event time)' -r
complete -c tlm-agg -l late -d 'Points for a window already written: drop them, or write a correction line' -r -f -a "drop\t'Count and log it, then drop it'
emit\t'Write its window\'s aggregate of late points as a correction line (`"correction":true`)'"
complete -c tlm-agg -l clock -d 'Place points by their own `ts` (event) or by the time they are read (wall)' -r -f -a "event\t'The point\'s own `ts`'
wall\t'The time the point was read (for sources with bad clocks)'"
complete -c tlm-agg -l by -d 'Group by name and only these tags, merging series that differ in others' -r
complete -c tlm-agg -l without -d 'Group by name and all tags but these' -r
complete -c tlm-agg -l match -d 'Aggregate only series whose name matches one of these globs (others are dropped)' -r
complete -c tlm-agg -l exclude -d 'Drop series whose name matches one of these globs' -r
complete -c tlm-agg -l max-rate -d 'Highest plausible counter rate per second: a drop whose wrap would imply more is a reset' -r
complete -c tlm-agg -l max-series -d 'Refuse new series beyond this many (counted and logged), bounding memory' -r
complete -c tlm-agg -l exact-limit -d 'Observations per distribution and window kept for exact quantiles; beyond, a sketch with --sketch-error relative error (lines marked "estimated":true)' -r
complete -c tlm-agg -l sketch-error -d 'Relative error bound of the quantile sketch' -r
complete -c tlm-agg -l set-limit -d 'Members per set and window counted exactly; beyond, HyperLogLog (≈0.8% error, lines marked "estimated":true)' -r
complete -c tlm-agg -l gauge -d 'Gauge statistics to write, comma-separated: last (under the series\' name), min, max, mean, count, sum (as NAME.min, …) or all' -r -f -a "last\t'The value with the newest `ts`, under the series\' own name'
min\t''
max\t''
mean\t''
count\t'Number of points, as a delta counter `NAME.count`'
sum\t''
all\t'Every statistic above'"
complete -c tlm-agg -l quantiles -d 'Quantiles of distributions, comma-separated, each in [0, 1]' -r
complete -c tlm-agg -l buckets -d 'Write distributions as histograms with these bucket upper bounds (comma-separated, increasing; +Inf is implied) instead of summaries: counts are exact at any volume' -r
complete -c tlm-agg -l style -d 'Output style: tlm metrics, or Etsy statsd\'s stat set as gauges with its arithmetic and the names its Graphite backend gives them (stats.X and stats_counts.X for counters, stats.timers.X.mean …, stats.gauges.X, stats.sets.X.count), --window being the flush interval. statsd style ignores --gauge, --quantiles and --rate, refuses --cumulative, and keeps up to --exact-limit values per timer: past it, statistics that need every value are left out and estimates are marked "estimated":true (docs/aggregation.md)' -r -f -a "tlm\t'tlm metrics: sums, gauge statistics, summaries, set sizes (docs/aggregation.md)'
statsd\t'Etsy statsd\'s stat set as gauges, under the names its Graphite backend writes'"
complete -c tlm-agg -l percent-threshold -d 'statsd style: Etsy\'s percentThreshold, comma-separated, each in [-100, 100]: P writes count_P, mean_P, upper_P, sum_P, sum_squares_P over the lowest P% of a timer\'s values (99.9 is named 99_9); -P writes count_topP, lower_topP … over the highest P%' -r
complete -c tlm-agg -l legacy-namespace -d 'statsd style: Etsy\'s graphite.legacyNamespace. true writes counters as stats.X (per second) and stats_counts.X; false as stats.counters.X.rate and stats.counters.X.count' -r -f -a "true\t''
false\t''"
complete -c tlm-agg -l max-line-bytes -d 'Skip lines longer than this many bytes (counted and logged as bad lines)' -r
complete -c tlm-agg -l threads -d 'Threads decoding input (default: one per core); output order never depends on it' -r
complete -c tlm-agg -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-agg -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-agg -l rate -d 'Also write NAME.rate (per second) for delta counters; cumulative counters always get one'
complete -c tlm-agg -l cumulative -d 'Write counters as running totals per series (what Prometheus needs)'
complete -c tlm-agg -l strict -d 'Exit with status 65 at the first bad input line instead of skipping it'
complete -c tlm-agg -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-agg -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-agg -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-agg -s V -l version -d 'Print version'
