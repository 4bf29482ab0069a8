// node-net-raw: runs the image's node with CAP_NET_RAW when the container grants NET_RAW, and plainly
// when it does not (the agent then says raw ICMP sockets are not permitted and falls back or stops).
//
// Why a launcher and not a copy of node holding the capability (docs/deploy.md, "Security context"):
// a non-root process keeps over exec only what a file capability or its ambient set gives it, and
// Kubernetes' runtimes set no ambient capabilities. This file holds cap_net_raw in its permitted set
// only (`setcap cap_net_raw+p`, no effective bit), so the kernel starts it with or without NET_RAW in
// the container's bounding set; where NET_RAW is there, it raises it into the inheritable and ambient
// sets, which node keeps across the exec below. One node binary serves agent and controller.
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NODE "/usr/local/bin/node"

/* 0 when NET_RAW is now ambient or was never granted; -1 with errno when raising it failed. */
static int raise_net_raw(void) {
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  const unsigned index = CAP_TO_INDEX(CAP_NET_RAW);
  const unsigned mask = CAP_TO_MASK(CAP_NET_RAW);
  if (syscall(SYS_capget, &header, data) != 0) return -1;
  if (!(data[index].permitted & mask)) return 0;
  data[index].inheritable |= mask;
  if (syscall(SYS_capset, &header, data) != 0) return -1;
  return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0);
}

int main(int argc, char **argv) {
  (void)argc;
  if (raise_net_raw() != 0) {
    fprintf(stderr, "node-net-raw: cannot pass CAP_NET_RAW on to node: %s\n", strerror(errno));
  }
  argv[0] = "node";
  execv(NODE, argv);
  fprintf(stderr, "node-net-raw: cannot execute %s: %s\n", NODE, strerror(errno));
  return 127;
}
