package lab

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// MigrateVM moves VM name's uplink from its host to host to: the host
// side of its veth changes namespace, the VM's own namespace, with its
// processes, sockets and addresses, stays as it is. It is what a live
// migration looks like from the network: the same VM, with its open
// connections, now behind another host. (Recreating the VM there, as
// DelVM and AddVM do, is a reboot.)
//
// Equivalent to:
//
//	ip -n FROM link set v-NAME netns TO; ip -n TO link set v-NAME up
func (l *Lab) MigrateVM(name string, from, to *Host) error {
	hostSide := hostSideName(name) // a lab reopened from a saved state knows its VMs by name only
	target, err := netns.GetFromName(to.NS)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", to.NS, err)
	}
	defer target.Close()
	err = Do(from.NS, func() error {
		link, err := netlink.LinkByName(hostSide)
		if err != nil {
			return fmt.Errorf("%s on %s: %w", hostSide, from.Name, err)
		}
		return netlink.LinkSetNsFd(link, int(target))
	})
	if err != nil {
		return err
	}
	return Do(to.NS, func() error {
		link, err := netlink.LinkByName(hostSide)
		if err != nil {
			return fmt.Errorf("%s on %s: %w", hostSide, to.Name, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return err
		}
		l.mu.Lock()
		if vm := l.VMs[name]; vm != nil {
			vm.Host, vm.Ifindex = to, link.Attrs().Index
		}
		l.mu.Unlock()
		return nil
	})
}
