# courier-dpctl fish shell completion

function __fish_courier-dpctl_no_subcommand --description 'Test if there has been any subcommand yet'
    for i in (commandline -opc)
        if contains -- $i ports vxnets vpcs routes hubs locals eips cache counters sg ct monitor cache-flush
            return 1
        end
    end
    return 0
end

complete -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -f -l chassis -r -d 'the chassis whose data plane to read'
complete -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -f -l pin-root -r -d 'where hostd pins (see courier-hostd --pin-root; default: the sandbox\'s, else /sys/fs/bpf/courier)'
complete -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -f -l run-dir -r -d 'a sandbox\'s run directory: find the chassis there'
complete -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -f -l help -s h -d 'show help'
complete -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -f -l version -s V -d 'print the version and exit'
complete -c courier-dpctl -n '__fish_seen_subcommand_from ports' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'ports' -d 'VM ports (by host-side ifindex)'
complete -c courier-dpctl -n '__fish_seen_subcommand_from vxnets' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'vxnets' -d 'vxnets and their flags'
complete -c courier-dpctl -n '__fish_seen_subcommand_from vpcs' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'vpcs' -d 'VPCs and their flags'
complete -c courier-dpctl -n '__fish_seen_subcommand_from routes' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'routes' -d 'VPC routes'
complete -c courier-dpctl -n '__fish_seen_subcommand_from hubs' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'hubs' -d 'each VPC\'s hubs; when each hub and gateway last answered this host\'s probes, and whether the DVR passes over it'
complete -c courier-dpctl -n '__fish_seen_subcommand_from locals' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'locals' -d 'addresses held by local ports'
complete -c courier-dpctl -n '__fish_seen_subcommand_from eips' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'eips' -d 'EIPs of local ports and their networks\' gateways; on a gateway, where each EIP\'s port is'
complete -c courier-dpctl -n '__fish_seen_subcommand_from cache' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'cache' -d 'learned direct paths, with age and hits'
complete -c courier-dpctl -n '__fish_seen_subcommand_from counters' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'counters' -d 'packet counters and drops by reason'
complete -c courier-dpctl -n '__fish_seen_subcommand_from sg' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'sg' -d 'security groups: local ports\' identities, what identities mean, groups\' rules (group numbers are hostd\'s, per VPC)'
complete -c courier-dpctl -n '__fish_seen_subcommand_from ct' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'ct' -d 'connections the security groups track, with who opened them and when they are forgotten unless renewed'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'monitor' -d 'stream the data plane\'s drops live (until interrupted, or --count)'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l rate -r -d 'report at most this many drops a second (0: all)'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l burst -r -d '... and this many at once'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l count -r -d 'stop after `N` drops'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l for -r -d 'stop after `DURATION`'
complete -c courier-dpctl -n '__fish_seen_subcommand_from monitor' -f -l format -s f -r -d 'text or json (one object a line)'
complete -c courier-dpctl -n '__fish_seen_subcommand_from cache-flush' -f -l help -s h -d 'show help'
complete -r -c courier-dpctl -n '__fish_courier-dpctl_no_subcommand' -a 'cache-flush' -d 'forget learned paths (all, or to IP); their next packets go through a hub and are learned again'
