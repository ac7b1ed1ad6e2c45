// main() of every test binary on the real control plane: enters the test's own network
// namespace before anything else can start a thread (unshare(CLONE_NEWNET) applies to
// the calling thread only), then runs the tests; the shared control plane and kubelet
// are stopped after the last one. Not being root is not an error here: the tests then
// skip (or fail under ZEROSCALE_REQUIRE_KUBE=1) saying so.
#include "gtest/gtest.h"
#include "tests/testing/private_network.h"

namespace zeroscale::testing {
::testing::Environment* NewKubeGlobalEnvironment();
}  // namespace zeroscale::testing

int main(int argc, char** argv) {
  (void)zeroscale::testing::EnterPrivateNetwork();  // first: no thread may exist yet
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(zeroscale::testing::NewKubeGlobalEnvironment());
  return RUN_ALL_TESTS();
}
