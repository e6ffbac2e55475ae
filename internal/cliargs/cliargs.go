// Package cliargs refuses what Courier's command lines would otherwise
// ignore: positional arguments nobody asked for. Go's flag parser stops
// at the first one, so "courier-northd version --nb X" used to start a
// daemon against the default run directory, --nb unread.
package cliargs

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// None refuses any positional argument: for a daemon, or a command that
// takes options only. Use it first in the Action, or as a command's Before.
func None(cx *cli.Context) error {
	if cx.NArg() == 0 {
		return nil
	}
	name, what := cx.App.Name, "takes options only"
	if cx.Command != nil && cx.Command.Name != "" && cx.Command.Name != name {
		name = cx.App.Name + " " + cx.Command.Name
	} else {
		for _, c := range cx.App.VisibleCommands() {
			if c.Name != "help" {
				what = "has no such command"
			}
		}
	}
	return fmt.Errorf("unexpected argument %q: %s %s (see %s --help)", cx.Args().First(), name, what, name)
}

// UnknownCommand is the Action of a command line made of commands: it
// runs when the first argument names none of them (urfave/cli would
// otherwise answer "No help topic"), and shows the help when there is no
// argument at all.
func UnknownCommand(cx *cli.Context) error {
	if cx.NArg() == 0 {
		return cli.ShowAppHelp(cx)
	}
	return fmt.Errorf("unknown command %q (see %s --help)", cx.Args().First(), cx.App.Name)
}
