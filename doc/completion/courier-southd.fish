# courier-southd fish shell completion

function __fish_courier-southd_no_subcommand --description 'Test if there has been any subcommand yet'
    for i in (commandline -opc)
        if contains -- $i
            return 1
        end
    end
    return 0
end

complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l nb -r -d 'northbound `REMOTES`, comma-separated (default: $COURIER_NB_DB, else the run directory\'s nb.sock)'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l sb -r -d 'southbound `REMOTES`, comma-separated (default: $COURIER_SB_DB, else the run directory\'s sb.sock)'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l run-dir -r -d 'run directory holding the default sockets'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l private-key -s p -r -d 'this party\'s private key `FILE` for ssl: remotes'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l certificate -s c -r -d 'this party\'s certificate `FILE`; its common name is who the database thinks it is'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l ca-cert -s C -r -d 'the CA certificate `FILE` the database\'s certificate must be signed by'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l dead-after -r -d 'a chassis whose heartbeat stops for this long is dead'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l hubs-per-vpc -r -d 'hubs to assign to every VPC'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l learned-age -r -d 'remove learned bindings not refreshed for this long'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l age-batch -r -d 'remove at most `N` stale learned bindings per pass'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l handoff-dead-for -r -d 'remove a SNAT handoff whose destination chassis has been dead this long'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l handoff-max-age -r -d 'remove a SNAT handoff left this long'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l probe-interval -r -d 'echo a database server that has been silent this long, and give it up (and the southbound lock) when silent 3 times as long. Raise it for very large databases, whose big commits keep the server silent for seconds'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l metrics-addr -r -d 'serve Prometheus metrics (/metrics), /healthz and /readyz on `ADDR` (host:port; a port alone is loopback\'s); empty: off'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l log-level -r -d 'debug, info, warn or error'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l log-format -r -d 'text (key=value) or json, one record a line'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l log-file -r -d 'log to `FILE` instead of standard error; SIGHUP reopens it (for logrotate)'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l help -s h -d 'show help'
complete -c courier-southd -n '__fish_courier-southd_no_subcommand' -f -l version -s V -d 'print the version and exit'
