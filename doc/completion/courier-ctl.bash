# bash completion for courier-ctl: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_ctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--days --db-dir --dir --force --nb-listen --nb-peer --nb-raft --nb-remotes --no-daemons --northd-metrics --ovsdb-allocator --pki-dir --run-dir --sb-central-listen --sb-listen --sb-peer --sb-raft --sb-remotes --server --southd-metrics --tls --verbose cluster-create cluster-join init pki sign start status stop" -- "$cur"))
}
complete -o default -F _courier_ctl courier-ctl
