// pause: PID 1 of a test pod's PID namespace, as the pause container of a real pod
// sandbox. It holds the pod's namespaces, reaps orphans, and exits on SIGTERM/SIGINT.
// Its name matters: the sidecar's --measure=processes leaves out a PID 1 called "pause".
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void Reap(int) {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

void Quit(int) { ::_exit(0); }

}  // namespace

int main() {
  struct sigaction quit {};
  quit.sa_handler = Quit;
  ::sigaction(SIGINT, &quit, nullptr);
  ::sigaction(SIGTERM, &quit, nullptr);
  struct sigaction reap {};
  reap.sa_handler = Reap;
  reap.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  ::sigaction(SIGCHLD, &reap, nullptr);
  for (;;) ::pause();
}
