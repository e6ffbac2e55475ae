#!/bin/sh
# An orchestrator's integration with nothing but ovsdb-client: declare a
# VPC "blue" with a vxnet "web" (once), add a port to it, wait until
# northd has compiled the change, and say what Courier made of the port.
#
#   declare-port.sh REMOTE PORT MAC IP
#   declare-port.sh unix:/var/run/courier/nb.sock vm1 02:00:00:00:01:0a 10.0.1.10
#
# Every write is idempotent: a "wait" operation with a timeout of 0 aborts
# the transaction, and applies nothing, when the row is already there.
# examples/ovsdb-client/example_test.go runs this script.
set -eu
DB=$1 PORT=$2 MAC=$3 IP=$4
tx() { ovsdb-client transact "$DB" "[\"Courier_Northbound\",$1]"; }
absent() { # a wait that succeeds only while no row of table $1 is named $2
	printf '{"op":"wait","table":"%s","where":[["name","==","%s"]],"columns":["name"],"until":"==","rows":[],"timeout":0}' "$1" "$2"
}
bump='{"op":"mutate","table":"NB_Global","where":[],"mutations":[["nb_cfg","+=",1]]},
      {"op":"select","table":"NB_Global","where":[],"columns":["nb_cfg"]}'

# The one NB_Global row (courier-nbctl creates it too). A second insert
# racing this one breaks maxRows and applies nothing.
tx '{"op":"select","table":"NB_Global","where":[],"columns":["_uuid"]}' | grep -q _uuid ||
	tx '{"op":"insert","table":"NB_Global","row":{}}' >/dev/null

# The VPC and its vxnet, in one transaction.
out=$(tx "$(absent VPC blue),
	{\"op\":\"insert\",\"table\":\"VPC\",\"row\":{\"name\":\"blue\",\"vxnets\":[\"named-uuid\",\"web\"]}},
	{\"op\":\"insert\",\"table\":\"Vxnet\",\"uuid-name\":\"web\",\"row\":{\"name\":\"web\",\"cidr\":\"10.0.1.0/24\"}}")
case $out in *'"timed out"'*) echo "VPC blue exists already" ;; *'"error"'*) echo "$out" >&2; exit 1 ;; esac

# The port, added to the vxnet's ports, and nb_cfg bumped in the same
# transaction: its new value is the answer's last result. Its mac_key and
# ip_key ("vxnet UUID/address", schema 1.8.0) are unique: a MAC or IP
# another port of the vxnet holds makes the server refuse the whole
# transaction (a port with several IPs or virtual IPs would take a key of
# its own and Address_Claim rows instead; docs/orchestrators.md).
VX=$(tx '{"op":"select","table":"Vxnet","where":[["name","==","web"]],"columns":["_uuid"]}' |
	sed -n 's/.*"_uuid":\["uuid","\([0-9a-f-]*\)"\].*/\1/p')
out=$(tx "$(absent Port "$PORT"),
	{\"op\":\"insert\",\"table\":\"Port\",\"uuid-name\":\"p\",\"row\":{\"name\":\"$PORT\",\"mac\":\"$MAC\",\"ips\":\"$IP\",
		\"mac_key\":\"$VX/$MAC\",\"ip_key\":\"$VX/$IP\"}},
	{\"op\":\"mutate\",\"table\":\"Vxnet\",\"where\":[[\"name\",\"==\",\"web\"]],\"mutations\":[[\"ports\",\"insert\",[\"named-uuid\",\"p\"]]]},
	$bump")
case $out in
*'"timed out"'*) echo "$PORT exists already"; out=$(tx "$bump") ;;
*'"error"'*) echo "$out" >&2; exit 1 ;;
esac
cfg=$(echo "$out" | sed -n 's/.*"nb_cfg":\([0-9]*\).*/\1/p')

# Wait until northd has written the change into the southbound: a wait
# operation blocks (here up to 30 s) until NB_Global.sb_cfg reaches cfg.
# With sb_cfg replaced by hv_cfg it waits for every live hypervisor.
out=$(tx "{\"op\":\"wait\",\"table\":\"NB_Global\",\"where\":[[\"sb_cfg\",\">=\",$cfg]],\"columns\":[\"sb_cfg\"],
	\"until\":\"!=\",\"rows\":[],\"timeout\":30000}")
case $out in *'"error"'*) echo "northd did not compile nb_cfg $cfg: $out" >&2; exit 1 ;; esac

# What Courier made of the port: a refusal is in its status; up and
# chassis say where it runs once a host has bound it.
out=$(tx "{\"op\":\"select\",\"table\":\"Port\",\"where\":[[\"name\",\"==\",\"$PORT\"]],\"columns\":[\"status\",\"up\",\"chassis\"]}")
case $out in
*'"state","error"'*) echo "$PORT: refused: $(echo "$out" | sed -n 's/.*\["error","\([^"]*\)"\].*/\1/p')" ;;
*'"up":true'*) echo "$PORT: up" ;;
*) echo "$PORT: accepted" ;;
esac
