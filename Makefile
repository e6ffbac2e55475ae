# Courier's build. `make deps` installs what building, testing and running
# need (Debian packages); `make build` puts every binary in ./bin.

GO       ?= go
BIN      := $(CURDIR)/bin
PKGS     := ./...
# What --version reports; without git, the binaries fall back to Go's
# build information (internal/version).
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null)
LDFLAGS  := $(if $(VERSION),-X github.com/courier-sdn/courier/internal/version.Version=$(VERSION))
# Tests that run real servers, namespaces and BPF need root; they run one
# package at a time so that two suites never race for the same resources.
TESTFLAGS ?= -count=1 -p 1 -timeout 40m

# ovn-central brings ovn-nbctl (through ovn-common) and OVN's schemas, for
# the script-compatibility test (tests/compat); it starts nothing where
# systemd does not run. graphviz draws courier-nbctl show --format svg.
# udhcpc (busybox's client and its script), isc-dhcp-client and dhcpcd
# are the DHCP clients the tests run in VMs; traceroute and tracepath what a VM sees of the path;
# sockperf the data plane benchmark's request/response rate; nftables
# the SNAT benchmark's kernel baseline (a router namespace's masquerade).
# qemu-system-x86 runs real guests (tools/guest); cpio and xz-utils build
# their image, whose kernel and busybox-static mkguest.sh downloads itself
# (busybox-static would replace busybox if installed).
DEBS := openvswitch-common clang llvm libbpf-dev iproute2 iperf3 tcpdump \
        hyperfine bpftool ethtool procps util-linux iputils-ping \
        libjemalloc2 ovn-central graphviz busybox isc-dhcp-client \
        udhcpc dhcpcd-base traceroute iputils-tracepath sockperf \
        qemu-system-x86 cpio xz-utils nftables
# Where the QEMU guest image is built and cached (tools/guest).
GUEST_CACHE ?= /var/cache/courier/guest

# make install [PREFIX=/usr/local] [DESTDIR=] puts the binaries, man
# pages, shell completions, systemd units and the environment files they
# read where a distribution's package would.
PREFIX     ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
UNITDIR    ?= $(PREFIX)/lib/systemd/system
BINDIR     := $(PREFIX)/bin
TOOLS      := $(notdir $(wildcard cmd/courier-*))

.PHONY: all deps guest generate build test unit bench sandbox check-generated vet fmt clean install

all: build

deps:
	@command -v apt-get >/dev/null || { echo "make deps needs apt-get (Debian/Ubuntu)"; exit 1; }
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all Debian dependencies present"; fi
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	$(GO) mod download
	@$(MAKE) --no-print-directory guest

# The QEMU guest's kernel and initramfs, built from the Debian archive
# once per kernel and script (tests that boot guests build it too).
guest:
	sh tools/guest/mkguest.sh $(GUEST_CACHE)

generate:
	$(GO) generate ./...

build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

vet:
	$(GO) vet $(PKGS)

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

# Regenerate models, BPF objects and tables, and fail if anything differs
# from what is committed.
check-generated: generate
	@git diff --exit-code --stat -- . || { echo "generated files are stale: run make generate and commit"; exit 1; }

test: build
	COURIER_BIN=$(BIN) $(GO) test $(TESTFLAGS) $(PKGS)

# Unit tests only: no root, no servers.
unit:
	$(GO) test -count=1 -short $(PKGS)

bench: build
	COURIER_BIN=$(BIN) $(GO) run ./tests/bench/cmd/courier-bench --bin $(BIN) --out bench/results

sandbox: build
	$(BIN)/courier-sandbox start

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/default $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in $(TOOLS); do \
		install -m 0755 $(BIN)/$$t $(DESTDIR)$(BINDIR)/$$t && \
		install -m 0644 doc/man/$$t.8 $(DESTDIR)$(PREFIX)/share/man/man8/ && \
		install -m 0644 doc/completion/$$t.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t && \
		install -m 0644 doc/completion/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/ || exit 1; \
	done
	install -m 0644 doc/man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	for u in packaging/systemd/*.service; do \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u) || exit 1; \
	done
	for f in packaging/default/*; do \
		t=$(DESTDIR)$(SYSCONFDIR)/default/$$(basename $$f); \
		[ -e $$t ] || install -m 0644 $$f $$t; \
	done

clean:
	rm -rf $(BIN)
