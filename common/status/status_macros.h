// Early-return helpers for absl::Status / absl::StatusOr, which abseil 20220623 lacks.
// Stateless macros; safe anywhere.
#ifndef ZEROSCALE_COMMON_STATUS_STATUS_MACROS_H_
#define ZEROSCALE_COMMON_STATUS_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ZS_STATUS_CONCAT_INNER_(a, b) a##b
#define ZS_STATUS_CONCAT_(a, b) ZS_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define ZS_RETURN_IF_ERROR(expr)                       \
  do {                                                 \
    ::absl::Status zs_status_ = (expr);                \
    if (!zs_status_.ok()) return zs_status_;           \
  } while (0)

// `ZS_ASSIGN_OR_RETURN(auto x, F());` assigns the value or returns the error.
#define ZS_ASSIGN_OR_RETURN(lhs, rexpr) \
  ZS_ASSIGN_OR_RETURN_IMPL_(ZS_STATUS_CONCAT_(zs_statusor_, __LINE__), lhs, rexpr)

#define ZS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

#endif  // ZEROSCALE_COMMON_STATUS_STATUS_MACROS_H_
