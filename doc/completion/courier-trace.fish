# courier-trace fish shell completion

function __fish_courier-trace_no_subcommand --description 'Test if there has been any subcommand yet'
    for i in (commandline -opc)
        if contains -- $i
            return 1
        end
    end
    return 0
end

complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l db -r -d 'southbound `REMOTES` (comma-separated)'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l run-dir -r -d 'find sb.sock, and a sandbox, in `DIR`'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l chassis -r -d 'trace live, starting on chassis `NAME`'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l pin-root -r -d 'live, outside a sandbox: data planes pinned under `DIR`'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l detailed -d 'every stage and what decided it (the default)'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l summary -d 'one line per chassis'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l minimal -d 'the outcome only'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l format -s f -r -d 'text or json'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l timeout -r -d 'give up after `DURATION`'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l private-key -s p -r -d 'this party\'s private key `FILE` for ssl: remotes'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l certificate -s c -r -d 'this party\'s certificate `FILE`; its common name is who the database thinks it is'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l ca-cert -s C -r -d 'the CA certificate `FILE` the database\'s certificate must be signed by'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l help -s h -d 'show help'
complete -c courier-trace -n '__fish_courier-trace_no_subcommand' -f -l version -s V -d 'print the version and exit'
