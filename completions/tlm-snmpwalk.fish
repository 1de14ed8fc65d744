complete -c tlm-snmpwalk -s v -l snmp-version -d 'SNMP version: 1, 2c or 3' -r -f -a "1\t''
2c\t''
3\t''"
complete -c tlm-snmpwalk -s c -l community -d 'Community (v1, v2c); prefer --community-file or TLM_SNMP_COMMUNITY' -r
complete -c tlm-snmpwalk -l community-file -d 'Read the community from FILE (a trailing newline is ignored)' -r -F
complete -c tlm-snmpwalk -s u -l user -d 'v3 user name' -r
complete -c tlm-snmpwalk -s l -l level -d 'v3 security level' -r -f -a "noAuthNoPriv\t''
authNoPriv\t''
authPriv\t''"
complete -c tlm-snmpwalk -s a -l auth-protocol -d 'v3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512' -r
complete -c tlm-snmpwalk -s A -l auth-pass -d 'v3 authentication passphrase; prefer --auth-pass-file or TLM_SNMP_AUTH_PASS' -r
complete -c tlm-snmpwalk -l auth-pass-file -d 'Read the authentication passphrase from FILE (a trailing newline is ignored)' -r -F
complete -c tlm-snmpwalk -s x -l priv-protocol -d 'v3 privacy protocol: DES, AES (AES-128), AES-192, AES-256, AES-192-C, AES-256-C' -r
complete -c tlm-snmpwalk -s X -l priv-pass -d 'v3 privacy passphrase; prefer --priv-pass-file or TLM_SNMP_PRIV_PASS' -r
complete -c tlm-snmpwalk -l priv-pass-file -d 'Read the privacy passphrase from FILE (a trailing newline is ignored)' -r -F
complete -c tlm-snmpwalk -s n -l context -d 'v3 context name' -r
complete -c tlm-snmpwalk -s O -l output-options -d 'Output options as net-snmp\'s -O: n prints numeric OIDs (with --format text)' -r
complete -c tlm-snmpwalk -s C -l app-options -d 'Application options as net-snmp\'s -C: rN sets max-repetitions' -r
complete -c tlm-snmpwalk -l max-repetitions -d 'GETBULK max-repetitions (halved automatically on tooBig)' -r
complete -c tlm-snmpwalk -s t -l timeout -d 'Seconds to wait for each reply (net-snmp\'s -t)' -r
complete -c tlm-snmpwalk -s r -l retries -d 'Retries of each request (net-snmp\'s -r)' -r
complete -c tlm-snmpwalk -l deadline -d 'The whole poll of one agent may take at most this long' -r
complete -c tlm-snmpwalk -l op -d 'Operation: get, walk (GETNEXT) or bulkwalk (GETBULK; v1 agents are walked)' -r -f -a "get\t'GET the OIDs given'
walk\t'GETNEXT through each subtree (what snmpwalk does)'
bulkwalk\t'GETBULK through each subtree (what snmpbulkwalk does); v1 agents are walked'"
complete -c tlm-snmpwalk -s m -l mibs -d 'MIB modules to load, as net-snmp\'s -m: ALL (built-in and --mib-dir) or \'\' for none (numeric names; text as with no MIBs). Default ALL, except that --format text -On prints as Debian\'s snmpbulkwalk -On does, with no MIBs' -r
complete -c tlm-snmpwalk -s M -l mib-dir -d 'More MIB modules (SMIv1/v2 text files) to load, as net-snmp\'s -M; repeatable' -r -F
complete -c tlm-snmpwalk -l targets -d 'Agents from FILE: HOST[:PORT] per line, or NDJSON {"host","port","name","tags"}' -r -F
complete -c tlm-snmpwalk -l label -d 'Columns whose values become tags of their row (same table or one sharing its index)' -r
complete -c tlm-snmpwalk -l concurrency -d 'Agents in flight at once' -r
complete -c tlm-snmpwalk -l max-varbinds -d 'Stop an agent\'s walk after this many varbinds (runaway agents)' -r
complete -c tlm-snmpwalk -l interval -d 'Poll every interval, aligned to the clock, until SIGINT/SIGTERM (default: once)' -r
complete -c tlm-snmpwalk -l count -d 'With --interval: stop after this many polls (0: until a signal)' -r
complete -c tlm-snmpwalk -l format -d 'Output: tlm metrics, or net-snmp\'s text' -r -f -a "ndjson\t'tlm metric v1'
text\t'net-snmp\'s `OID = TYPE: value` lines'"
complete -c tlm-snmpwalk -l tag -d 'Static tag on every metric (repeatable), e.g. --tag site=fra1' -r
complete -c tlm-snmpwalk -l progress -d 'Progress bar on stderr: auto (when stderr is a terminal), never' -r -f -a "auto\t''
never\t''"
complete -c tlm-snmpwalk -l log-level -d 'Base log level for stderr' -r -f -a "error\t''
warn\t''
info\t''
debug\t''
trace\t''"
complete -c tlm-snmpwalk -l log-format -d 'Log line format on stderr' -r -f -a "kv\t'key=value pairs, one event per line'
json\t'one JSON object per line'"
complete -c tlm-snmpwalk -s q -l quiet -d 'Log less (repeat to log errors only); adjusts --log-level downwards'
complete -c tlm-snmpwalk -l verbose -d 'Log more (repeat for more detail); adjusts --log-level upwards'
complete -c tlm-snmpwalk -s h -l help -d 'Print help (see more with \'--help\')'
complete -c tlm-snmpwalk -s V -l version -d 'Print version'
