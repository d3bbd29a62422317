# Outpost — see README.md. Every target works on a fresh Debian 12 machine
# with Go; `make deps` installs the rest.
SHELL     := /bin/bash
GO        ?= go
BIN       := bin
RACE      ?= -race
E2E_FLAGS ?=

.PHONY: all build deps run test unit fuzz e2e bench lint phone-guides-check clean deb deb-test image image-test attack chaos

all: build

build:
	$(GO) build -o $(BIN)/outpost ./appliance/cmd/outpost
	$(GO) build -o $(BIN)/outpost-cloud ./cloudsync/cmd/outpost-cloud

deps:
	scripts/deps.sh

# The demo: one node with the demo account; prints the web UI address and
# the SIP credentials. Ctrl-C stops it cleanly.
run: deps build
	scripts/run-demo.sh

# Everything CI runs: vet, unit tests (race), a short fuzz, the system tests
# with real processes.
test: deps
	$(GO) vet ./...
	$(MAKE) unit fuzz e2e

unit:
	$(GO) test $(RACE) -count=1 -timeout 10m $$($(GO) list ./... | grep -v /appliance/e2e)

# Every fuzz target, 30 s each, two at a time (scripts/fuzz.sh; FUZZTIME,
# FUZZ_JOBS and FUZZ_ONLY change that).
fuzz:
	FUZZ_GO=$(GO) scripts/fuzz.sh

e2e:
	$(GO) test $(RACE) -count=1 -timeout 20m $(E2E_FLAGS) ./appliance/e2e/

# Benchmarks, Outpost's SIP loads beside Kamailio's (kamailio-deps
# installs its SQLite module); writes the table in docs/performance.md.
bench: deps
	scripts/kamailio-deps.sh kamailio-sqlite-modules
	scripts/bench.sh

lint: deps
	scripts/lint-deps.sh
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...

# The phone guides' example configurations (docs/phones/examples/) against
# Outpost's own settings: realm, ports, transports, DNS names, timers. Its
# tests (scripts/phonecheck) also run in `make unit`.
phone-guides-check:
	$(GO) run ./scripts/phonecheck

# The attack suite (docs/reliability.md): floods and bans, connection caps
# and slowloris, sipvicious, digest attacks, toll fraud, oversized and
# torture messages, the API's and the sync's refusals, testssl.sh. The fast
# part also runs in `make e2e`; OUTPOST_ATTACK_FULL=1 adds the slow floods.
attack: deps
	OUTPOST_ATTACK_FULL=1 $(GO) test $(RACE) -count=1 -timeout 20m -run 'TestAttack|TestTortureMessages' ./appliance/e2e/

# The fault suite (docs/reliability.md): three nodes in network namespaces,
# partitions, lossy links, kill -9 and SIGSTOP of the leader, full disks (a
# follower's, the leader's), torn writes. Needs root, ip and nft. Partition,
# lossy links, full disks and torn writes also run in `make e2e`;
# OUTPOST_CHAOS=1 adds the leader kills and stops.
chaos: deps
	OUTPOST_CHAOS=1 $(GO) test $(RACE) -count=1 -timeout 30m -run 'TestChaos|TestCloud(JournalUpload|Sync)LeaderKilled' ./appliance/e2e/

# The appliance package, its install/upgrade/remove test in a chroot, the VM
# image (qcow2 + OVA) and its boot test under qemu (docs/install.md). Not
# part of `make test`: they need debootstrap and take minutes.
deb: build
	image/deb/build.sh

deb-test: deb
	image/deb/test.sh

image: deb
	image/build.sh

image-test: image
	image/test.sh

clean:
	rm -rf $(BIN) run-data
