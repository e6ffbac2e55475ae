// Command courier-ctl starts, stops and inspects Courier's central services.
package main

import (
	"os"

	"github.com/courier-sdn/courier/tools/ctl"
)

func main() { os.Exit(ctl.Main(os.Args)) }
