package ctbench

// The measurement's object is compiled as the DVR's is (dataplane/gen.go),
// with the DVR's connection tracking header (dataplane/bpf/ct.h).
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu -I../../../dataplane/bpf" -target bpfel -go-package ctbench ctbench bpf/ctbench.c
