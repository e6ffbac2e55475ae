// Package version says which build of Courier a binary is, the same way
// for every command: "courier-X --version" (or -V, as in Open vSwitch's
// tools, where -v means --verbose, as it does in courier-ctl).
//
// The answer comes from what the Go toolchain records in the binary
// (runtime/debug.ReadBuildInfo): the module's version, set when built
// with "go install ...@vX.Y.Z", and the VCS revision, commit time and
// whether the tree had uncommitted changes, recorded when the build
// stamps VCS information. Packagers (and the Makefile, since builds here
// run with -buildvcs=false) set Version at link time instead:
//
//	go build -ldflags "-X github.com/courier-sdn/courier/internal/version.Version=v1.2.0" ./cmd/...
package version

import (
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// Version, when set with -ldflags -X, is reported instead of what the
// build info says. It is the one package-level variable Courier has on
// purpose: the linker can only set a variable.
var Version string

func init() {
	// urfave/cli's --version flag is a package variable; its default
	// alias -v would collide with courier-ctl's --verbose.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"V"},
		Usage: "print the version and exit", DisableDefaultText: true}
}

// String is this binary's version, for a cli.App's Version.
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information in the binary)"
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo renders build information, for example
// "v1.2.0, revision 59925c6a1b2c, committed 2026-03-01T10:00:00Z, modified, go1.26.8"
// or "(devel), go1.26.8" for a build without VCS information.
func FromBuildInfo(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	parts := []string{v}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		parts = append(parts, "revision "+rev[:min(12, len(rev))])
	}
	if t := settings["vcs.time"]; t != "" {
		parts = append(parts, "committed "+t)
	}
	if settings["vcs.modified"] == "true" {
		parts = append(parts, "modified")
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, ", ")
}
