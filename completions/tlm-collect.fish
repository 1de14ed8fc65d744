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
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "system" -d 'CPU time and utilisation, memory and swap, load, uptime and process counts from /proc'
complete -c tlm-collect -n "__fish_tlm_collect_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s i -l interval -d 'Time between collections, aligned to the wall clock' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s n -l count -d 'Stop after this many collections (0: run until SIGINT/SIGTERM)' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -s t -l tag -d 'Static tag added to every metric (repeatable), e.g. --tag role=edge' -r
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand system" -l proc-root -d 'Where procfs is mounted (a container may bind the host\'s elsewhere)' -r -F
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
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system help" -f -a "system" -d 'CPU time and utilisation, memory and swap, load, uptime and process counts from /proc'
complete -c tlm-collect -n "__fish_tlm_collect_using_subcommand help; and not __fish_seen_subcommand_from system help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
