package localproc

// FreePort returns a free TCP port on ip that no other caller in this process got in the last two
// minutes (the kernel may offer a port again until a server binds it): for spawners whose servers
// must be told their port before they listen, such as a container on the host's network.
func FreePort(ip string) (int, error) { return freePort(ip) }
