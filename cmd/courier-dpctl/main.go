// Command courier-dpctl shows a host's data plane.
package main

import (
	"os"

	"github.com/courier-sdn/courier/tools/dpctl"
)

func main() { os.Exit(dpctl.Main(os.Args)) }
