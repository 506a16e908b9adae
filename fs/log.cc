#include "fs/log.h"

#include <syslog.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace qatq {

namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};
std::atomic<bool> g_syslog{false};

void Emit(LogLevel level, const char* fmt, va_list ap) {
  if (static_cast<int>(level) > g_level.load()) return;
  char buf[2048];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  if (g_syslog.load()) {
    static const int kPrio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    syslog(kPrio[static_cast<int>(level)], "%s", buf);
  } else {
    static const char* kName[] = {"error", "warning", "info", "debug"};
    std::fprintf(stderr, "qatqfs: %s: %s\n", kName[static_cast<int>(level)], buf);
  }
}
}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void LogToSyslog(bool on) {
  if (on) openlog("qatqfs", LOG_PID, LOG_DAEMON);
  g_syslog = on;
}

#define QATQ_DEFINE_LOG(Name, Level) \
  void Name(const char* fmt, ...) {  \
    va_list ap;                      \
    va_start(ap, fmt);               \
    Emit(Level, fmt, ap);            \
    va_end(ap);                      \
  }
QATQ_DEFINE_LOG(LogError, LogLevel::kError)
QATQ_DEFINE_LOG(LogWarning, LogLevel::kWarning)
QATQ_DEFINE_LOG(LogInfo, LogLevel::kInfo)
QATQ_DEFINE_LOG(LogDebug, LogLevel::kDebug)
#undef QATQ_DEFINE_LOG

}  // namespace qatq
