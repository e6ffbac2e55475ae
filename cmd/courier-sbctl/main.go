// Command courier-sbctl shows Courier's southbound database.
package main

import (
	"os"

	"github.com/courier-sdn/courier/tools/sbctl"
)

func main() { os.Exit(sbctl.Main(os.Args)) }
