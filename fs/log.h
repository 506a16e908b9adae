// Minimal leveled logging for the daemon: stderr in the foreground, syslog
// once daemonized. Messages are one line each.
#ifndef QATQ_FS_LOG_H_
#define QATQ_FS_LOG_H_

namespace qatq {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Default: kWarning, stderr.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Route messages to syslog (after daemonizing).
void LogToSyslog(bool on);

void LogError(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogWarning(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogInfo(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void LogDebug(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace qatq

#endif  // QATQ_FS_LOG_H_
