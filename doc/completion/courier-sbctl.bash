# bash completion for courier-sbctl: generated from its command definitions
# (go generate ./doc); do not edit.
_courier_sbctl() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "--all --bare --ca-cert --certificate --chassis --columns --db --format --id --if-exists --no-headings --private-key --run-dir --runtime --timeout --uuid add binding-list chassis-del chassis-list clear create datapath-list del-connection del-ssl destroy find get get-connection get-ssl hub-list learned-list lflow-list list remove set set-connection set-ssl show wait-until" -- "$cur"))
}
complete -o default -F _courier_sbctl courier-sbctl
