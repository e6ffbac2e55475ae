// Command courier-sandbox runs a whole Courier deployment in namespaces.
package main

import (
	"os"

	"github.com/courier-sdn/courier/tools/sandbox"
)

func main() { os.Exit(sandbox.Main(os.Args)) }
