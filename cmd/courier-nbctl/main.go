// Command courier-nbctl manages Courier's northbound database.
package main

import (
	"os"

	"github.com/courier-sdn/courier/tools/nbctl"
)

func main() { os.Exit(nbctl.Main(os.Args)) }
