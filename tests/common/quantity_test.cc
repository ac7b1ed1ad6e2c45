// Kubernetes quantities read exactly into milli-units, bounded, and written back for
// messages.
#include "common/model/quantity.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zeroscale {
namespace {

using ::testing::HasSubstr;

int64_t Milli(const char* text) {
  absl::StatusOr<int64_t> v = ParseQuantityMilli(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status();
  return v.ok() ? *v : -1;
}

std::string Error(const char* text) {
  absl::StatusOr<int64_t> v = ParseQuantityMilli(text);
  EXPECT_FALSE(v.ok()) << text << " parsed as " << *v;
  return v.ok() ? "" : std::string(v.status().message());
}

TEST(QuantityTest, ReadsEveryForm) {
  EXPECT_EQ(Milli("500m"), 500);
  EXPECT_EQ(Milli("2"), 2000);
  EXPECT_EQ(Milli("+2"), 2000);
  EXPECT_EQ(Milli("0"), 0);
  EXPECT_EQ(Milli("1.5"), 1500);
  EXPECT_EQ(Milli(".5"), 500);
  EXPECT_EQ(Milli("2."), 2000);
  EXPECT_EQ(Milli("0.05"), 50);
  EXPECT_EQ(Milli("16Gi"), int64_t{16} * 1024 * 1024 * 1024 * 1000);
  EXPECT_EQ(Milli("1Ki"), 1024000);
  EXPECT_EQ(Milli("1.5Gi"), int64_t{3} * 512 * 1024 * 1024 * 1000);
  EXPECT_EQ(Milli("100M"), int64_t{100} * 1000 * 1000 * 1000);
  EXPECT_EQ(Milli("2k"), 2000000);
  EXPECT_EQ(Milli("1e3"), 1000000);
  EXPECT_EQ(Milli("1E-3"), 1);
  EXPECT_EQ(Milli("12e+1"), 120000);
  EXPECT_EQ(Milli("250u"), 1);  // 0.25 milli rounds up, as MilliValue() does
  EXPECT_EQ(Milli("1n"), 1);
  EXPECT_EQ(Milli("0n"), 0);
  EXPECT_EQ(Milli("1500000u"), 1500);
  EXPECT_EQ(Milli("4Pi"), (int64_t{4} << 50) * 1000);
}

TEST(QuantityTest, RefusesWhatIsNotAQuantityAndBounds) {
  EXPECT_THAT(Error(""), HasSubstr("empty"));
  EXPECT_THAT(Error("-1"), HasSubstr("negative"));
  EXPECT_THAT(Error("1.2.3"), HasSubstr("two decimal points"));
  EXPECT_THAT(Error("abc"), HasSubstr("no digits"));
  EXPECT_THAT(Error("m"), HasSubstr("no digits"));
  EXPECT_THAT(Error("2Qi"), HasSubstr("unknown suffix 'Qi'"));
  EXPECT_THAT(Error("2 Gi"), HasSubstr("unknown suffix"));
  EXPECT_THAT(Error("1e"), HasSubstr("exponent"));
  EXPECT_THAT(Error("1e99"), HasSubstr("exponent out of range"));
  EXPECT_THAT(Error("9Ei"), HasSubstr("too large"));
  EXPECT_THAT(Error("1e18"), HasSubstr("too large"));
  EXPECT_THAT(Error("1234567890123456789"), HasSubstr("too many digits"));
  EXPECT_THAT(Error(std::string(100, '1').c_str()), HasSubstr("too long"));
  // Leading zeros are not significant digits.
  EXPECT_EQ(Milli("0000000000000000000001"), 1000);
  EXPECT_THAT(Error("4Ei"), HasSubstr("too large"));
}

TEST(QuantityTest, FormatsForMessages) {
  EXPECT_EQ(FormatQuantityMilli("cpu", 500), "500m");
  EXPECT_EQ(FormatQuantityMilli("cpu", 1500), "1.5");
  EXPECT_EQ(FormatQuantityMilli("cpu", 2000), "2");
  EXPECT_EQ(FormatQuantityMilli("nvidia.com/gpu", 8000), "8");
  EXPECT_EQ(FormatQuantityMilli("memory", (int64_t{16} << 30) * 1000), "16Gi");
  EXPECT_EQ(FormatQuantityMilli("memory", 1000 * 1000), "1000");
  EXPECT_EQ(FormatQuantityMilli("memory", 0), "0");
}

TEST(QuantityTest, ExtendedResources) {
  EXPECT_TRUE(IsExtendedResource("nvidia.com/gpu"));
  EXPECT_TRUE(IsExtendedResource("amd.com/gpu"));
  EXPECT_FALSE(IsExtendedResource("cpu"));
  EXPECT_FALSE(IsExtendedResource("memory"));
  EXPECT_FALSE(IsExtendedResource("hugepages-2Mi"));
  EXPECT_FALSE(IsExtendedResource("kubernetes.io/something"));
  EXPECT_FALSE(IsExtendedResource("example.kubernetes.io/x"));
  EXPECT_FALSE(IsExtendedResource("/gpu"));
  EXPECT_FALSE(IsExtendedResource("nvidia.com/"));
}

}  // namespace
}  // namespace zeroscale
