#include "tests/testing/private_network.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "tests/testing/command.h"

namespace zeroscale::testing {
namespace {

std::optional<absl::Status>& Entered() {
  static std::optional<absl::Status> status;
  return status;
}

absl::Status LoopbackUp() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  int rc = ::ioctl(fd, SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    rc = ::ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  const int err = errno;
  ::close(fd);
  if (rc != 0) return absl::InternalError(absl::StrCat("bringing lo up: ", std::strerror(err)));
  return absl::OkStatus();
}

absl::Status Enter() {
  if (::geteuid() != 0) {
    return absl::FailedPreconditionError(
        "Kubernetes tests need root: each test binary makes a network namespace of its own and "
        "one per pod (run as root, or with sudo)");
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("unshare(CLONE_NEWNET): ", std::strerror(errno)));
  }
  if (absl::Status s = LoopbackUp(); !s.ok()) return s;
  if (absl::Status s =
          RunCommandOk({"ip", "addr", "add", absl::StrCat(kHostAddress, "/32"), "dev", "lo"});
      !s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("adding the host address (is iproute2 installed?): ", s.message()));
  }
  const int fd = ::open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, "1\n", 2) != 2) {
    if (fd >= 0) ::close(fd);
    return absl::FailedPreconditionError("cannot enable IPv4 forwarding in the test's namespace");
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::Status EnterPrivateNetwork() {
  if (!Entered()) Entered() = Enter();
  return *Entered();
}

absl::Status PrivateNetworkStatus() {
  if (!Entered()) {
    return absl::FailedPreconditionError(
        "the test binary did not enter a private network namespace: link it with "
        "zs_kube_test_main (EnterPrivateNetwork() first thing in main)");
  }
  return *Entered();
}

}  // namespace zeroscale::testing
