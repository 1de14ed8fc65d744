# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_tlm_collect_global_optspecs
    string join \n v/verbose q/quiet log-level= log-format= h/help V/version
end

function __fish_tlm_collect_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_tlm_collect_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_tlm_collect_using_subcommand
    set -l cmd (__fish_tlm_collect_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -s V -l version -d 'Print version'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "system" -d 'CPU, memory and swap, load, uptime, processes, disks, file systems, network, sockets, vm from /proc'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "exec" -d 'Run a program every interval and read what it prints as metrics (a plugin)'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "nginx" -d 'nginx stub_status: connections by state, accepts, handled, requests'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "prometheus" -d 'Scrape a Prometheus text exposition (node_exporter, any /metrics)'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "http" -d 'GET a JSON status page and pick numbers by path (--field NAME=PATH)'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "tail" -d 'Follow a log file across rotation; count and measure the lines a regex matches'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "task" -d 'Run several sources at their own intervals from a TOML task file'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l proc-root -d 'Where procfs is mounted (a container may bind the host\'s elsewhere)' -r -F
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l mount -d 'Only file systems mounted at paths matching this glob (repeatable)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l interface -d 'Only network interfaces matching this glob (repeatable), e.g. --interface \'eth*\'' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l input-format -d 'What the program prints: detected from its first line by default' -r -f -a "auto\t'Guess from the first non-empty line'
ndjson\t'tlm metric v1'
graphite\t'Graphite plaintext: path value [timestamp]'
influx\t'InfluxDB line protocol'
prometheus\t'Prometheus text exposition'
statsd\t'statsd lines: name:value|type'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l timeout -d 'Give up on a collection after this long; it reports collect.up 0' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l signal -d 'With --persistent: ask it for a report at every collection and wait (up to --timeout) for the answer to go quiet' -r -f -a "none\t'Never: it prints on its own schedule'
stdin\t'A newline on its stdin'
hup\t'SIGHUP'
usr1\t'SIGUSR1'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -l persistent -d 'Keep one instance running and read what it printed since the last collection; it is restarted when it exits'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand exec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -l timeout -d 'Give up on a collection after this long; it reports collect.up 0' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand nginx" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -l timeout -d 'Give up on a collection after this long; it reports collect.up 0' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand prometheus" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -l timeout -d 'Give up on a collection after this long; it reports collect.up 0' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -l field -d 'A gauge NAME from the number at PATH (keys by `.`, `[N]` indexes, `[\\"a.b\\"]` quoted keys); repeatable' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand http" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l jitter -d 'Start each collection up to this long after its tick, at random (spreads a fleet\'s load)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l match -d 'Regular expression (Rust syntax) with named captures, e.g. (?P<ms>\\\\d+)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l counter -d 'A delta counter NAME of the matching lines per interval (repeatable; --count is the number of collections, as for every source)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l observe -d 'A distribution NAME of the numbers a capture matched (repeatable)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l tag-capture -d 'A capture whose text becomes a tag of the same name (repeatable)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -l from-start -d 'Read the file from its start instead of its end'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand tail" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand task" -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand task" -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand task" -s v -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand task" -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand task" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "system" -d 'CPU, memory and swap, load, uptime, processes, disks, file systems, network, sockets, vm from /proc'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "exec" -d 'Run a program every interval and read what it prints as metrics (a plugin)'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "nginx" -d 'nginx stub_status: connections by state, accepts, handled, requests'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "prometheus" -d 'Scrape a Prometheus text exposition (node_exporter, any /metrics)'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "http" -d 'GET a JSON status page and pick numbers by path (--field NAME=PATH)'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "tail" -d 'Follow a log file across rotation; count and measure the lines a regex matches'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "task" -d 'Run several sources at their own intervals from a TOML task file'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system exec nginx prometheus http tail task help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
