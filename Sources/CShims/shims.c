#define _GNU_SOURCE
#include "shims.h"
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pty.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <wchar.h>

extern char **environ;

const short usvc_POSIX_SPAWN_SETSID = POSIX_SPAWN_SETSID;

int usvc_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
  return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int usvc_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
  return posix_spawn_file_actions_addchdir_np(actions, path);
}

int usvc_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int usvc_get_winsize(int fd, struct winsize *size) { return ioctl(fd, TIOCGWINSZ, size); }
int usvc_set_winsize(int fd, const struct winsize *size) { return ioctl(fd, TIOCSWINSZ, size); }

int usvc_openpty(int *master, int *slave, char *name, size_t name_len,
                 const struct termios *attributes, const struct winsize *size) {
  if (openpty(master, slave, NULL, attributes, size) != 0) return -1;
  // The slave's path is what the child opens after setsid, so that the pty
  // becomes its controlling terminal; both ends stay out of exec'd children.
  if (ttyname_r(*slave, name, name_len) != 0) return -1;
  fcntl(*master, F_SETFD, FD_CLOEXEC);
  fcntl(*slave, F_SETFD, FD_CLOEXEC);
  return 0;
}

int usvc_signalfd(const sigset_t *mask) { return signalfd(-1, mask, SFD_CLOEXEC | SFD_NONBLOCK); }

int usvc_interval_timer(long milliseconds) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) return -1;
  struct timespec every = {milliseconds / 1000, (milliseconds % 1000) * 1000000L};
  struct itimerspec spec = {every, every};
  if (timerfd_settime(fd, 0, &spec, NULL) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

int usvc_signalfd_read(int fd) {
  struct signalfd_siginfo info;
  ssize_t n = read(fd, &info, sizeof info);
  if (n != (ssize_t)sizeof info) return 0;
  return (int)info.ssi_signo;
}

char **usvc_environ(void) { return environ; }

int usvc_exited(int status) { return WIFEXITED(status); }
int usvc_exit_status(int status) { return WEXITSTATUS(status); }
int usvc_term_signal(int status) { return WTERMSIG(status); }

int usvc_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int usvc_malloc_trim(void) { return malloc_trim(0); }

int usvc_release_stack_below(void) {
  // The lowest page released so far: the stack's mapping never shrinks, so
  // everything from there up to this frame is mapped and goes in one call.
  static uintptr_t lowest;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  // Pages wholly below this frame's, less 512 bytes for the madvise wrapper's
  // frame and the x86-64 red zone (128 bytes).
  const uintptr_t kept = ((uintptr_t)__builtin_frame_address(0) - 512) & ~(page - 1);
  if (lowest == 0 || lowest > kept) lowest = kept;
  if (lowest < kept && madvise((void *)lowest, kept - lowest, MADV_DONTNEED) != 0) return -1;
  // Then further down, a page at a time, until the end of the mapping (ENOMEM);
  // 256 pages (1 MiB) bound the walk however the mappings lie.
  for (int pages = 0; pages < 256 && madvise((void *)(lowest - page), page, MADV_DONTNEED) == 0; pages++) {
    lowest -= page;
  }
  return 0;
}

int usvc_lock_file(int fd) {
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  return fcntl(fd, F_SETLK, &lock);
}

int usvc_lock_holder(int fd) {
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, F_GETLK, &lock) != 0) return -1;
  return lock.l_type == F_UNLCK ? 0 : (int)lock.l_pid;
}

// MARK: usvc_spawn_plain

struct spawn_request {
  const char *path;
  char *const *argv;
  char *const *envp;
  const char *directory;
  int new_session;
  int restore_normal_policy;
  const struct usvc_fd_action *actions;
  int action_count;
  volatile int error;  // written by the child, read by the parent once it resumes
  volatile unsigned long long shortfall;  // likewise: the limits (bit RLIMIT_*) and nice (USVC_SHORT_NICE) not had
};

static void close_from(int first) {
  if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return;
  struct rlimit limit;  // Kernels before 5.9: one close per possible descriptor.
  int last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536 ? (int)limit.rlim_cur : 65536;
  for (int fd = first; fd < last; fd++) close(fd);
}

// Runs in the child, on the parent's memory, until execve replaces it: only
// system calls, no allocation, nothing that takes a lock.
static int spawn_child(void *argument) {
  struct spawn_request *request = argument;
  sigset_t empty;
  struct sched_param normal = {0};
  if (request->restore_normal_policy) sched_setscheduler(0, SCHED_OTHER, &normal);
  if (request->new_session && setsid() < 0) goto failed;
  for (int index = 0; index < request->action_count; index++) {
    const struct usvc_fd_action *action = &request->actions[index];
    switch (action->kind) {
    case USVC_FD_OPEN: {
      int fd = open(action->path, action->flags, 0);
      if (fd < 0) goto failed;
      if (fd != action->fd) {
        if (dup2(fd, action->fd) < 0) goto failed;
        close(fd);
      }
      break;
    }
    case USVC_FD_DUPLICATE:
      if (action->source == action->fd) {
        // dup2 onto itself would keep FD_CLOEXEC: clear it instead.
        if (fcntl(action->fd, F_SETFD, 0) < 0) goto failed;
      } else if (dup2(action->source, action->fd) < 0) {
        goto failed;
      }
      break;
    case USVC_FD_CLOSE_FROM: close_from(action->fd); break;
    case USVC_SET_LIMIT: {
      // A hard limit this process may not raise (EPERM, inherited lower) stays,
      // and the soft one goes as high as it allows: a shortfall. A later action
      // on the same limit (job.limit after the caller's) decides anew.
      struct rlimit wanted = {action->soft, action->hard};
      unsigned long long bit = 1ULL << (action->fd & 63);
      if (setrlimit(action->fd, &wanted) == 0) {
        request->shortfall &= ~bit;
        break;
      }
      struct rlimit current;
      if (getrlimit(action->fd, &current) < 0) goto failed;
      if (wanted.rlim_max > current.rlim_max) wanted.rlim_max = current.rlim_max;
      if (wanted.rlim_cur > wanted.rlim_max) wanted.rlim_cur = wanted.rlim_max;
      if (setrlimit(action->fd, &wanted) < 0) goto failed;
      request->shortfall |= bit;
      break;
    }
    case USVC_SET_NICE:
      // Lowering the nice value takes CAP_SYS_NICE (or RLIMIT_NICE room): without, it stays.
      if (setpriority(PRIO_PROCESS, 0, action->fd) < 0) request->shortfall |= 1ULL << USVC_SHORT_NICE;
      break;
    }
  }
  if (request->directory && chdir(request->directory) < 0) goto failed;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, NULL);
  execve(request->path, request->argv, request->envp);
failed:
  request->error = errno;
  _exit(127);
}

int usvc_spawn_plain(const char *path, char *const argv[], char *const envp[],
                     const char *directory, int new_session,
                     const struct usvc_fd_action *actions, int action_count,
                     unsigned long long *shortfall) {
  // CLONE_VFORK wakes the caller when the child's execve lets go of its memory,
  // well before the kernel has loaded the program; woken, a SCHED_OTHER caller
  // preempts its child on the same CPU and runs first (measured: ~0.2 ms more to
  // exec). SCHED_BATCH does not preempt on wakeup, so the caller is batch for
  // the clone and the child is normal again before anything else.
  struct sched_param normal = {0};
  int batch = sched_getscheduler(0) == SCHED_OTHER && sched_setscheduler(0, SCHED_BATCH, &normal) == 0;
  struct spawn_request request = {path, argv, envp, directory, new_session, batch, actions, action_count, 0, 0};
  // The child runs on this stack, inside this frame: CLONE_VFORK keeps the
  // caller stopped until the child exec'd or exited. 8 KiB: the child only makes
  // system calls (under a page); with 32 KiB a runner's stack had one more
  // dirty page for good (measured, 100 runners).
  char stack[8192] __attribute__((aligned(64)));
  sigset_t all, previous;
  sigfillset(&all);
  // Blocked in the child from its first instruction until just before exec.
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  int pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &request);
  int clone_error = errno;
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  if (batch) sched_setscheduler(0, SCHED_OTHER, &normal);
  if (pid < 0) return -clone_error;
  if (request.error != 0) {
    waitpid(pid, NULL, 0);
    return -request.error;
  }
  *shortfall = request.shortfall;
  return pid;
}

static int terminal_fd = -1;
static struct termios terminal_saved;
static char terminal_bytes[256];
static size_t terminal_length;
static volatile sig_atomic_t terminal_restored = 1;

void usvc_terminal_restore(void) {
  if (terminal_restored) return;
  terminal_restored = 1;
  const char *p = terminal_bytes;
  size_t left = terminal_length;
  while (left > 0) {
    ssize_t n = write(terminal_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= (size_t)n;
  }
  tcsetattr(terminal_fd, TCSANOW, &terminal_saved);
}

static void terminal_crashed(int signal_number) {
  int saved_errno = errno;
  usvc_terminal_restore();
  // Die of the same signal, as without this handler (core dump, exit status).
  struct sigaction fallback;
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigaction(signal_number, &fallback, NULL);
  errno = saved_errno;
  raise(signal_number);
}

int usvc_terminal_guard(int fd, const struct termios *saved, const char *bytes, size_t length) {
  if (length > sizeof terminal_bytes) { errno = EINVAL; return -1; }
  terminal_fd = fd;
  terminal_saved = *saved;
  memcpy(terminal_bytes, bytes, length);
  terminal_length = length;
  terminal_restored = 0;
  static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE, SIGSYS};
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = terminal_crashed;
  // SA_NODEFER | SA_RESETHAND: a crash inside the handler ends the process at once.
  action.sa_flags = SA_NODEFER | SA_RESETHAND;
  for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++) {
    if (sigaction(crashes[i], &action, NULL) != 0) return -1;
  }
  return 0;
}

int usvc_wcwidth(unsigned int scalar) { return wcwidth((wchar_t)scalar); }

int usvc_tcp_connect_start(const char *host, int port) {
  struct sockaddr_storage address;
  memset(&address, 0, sizeof address);
  socklen_t length;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&address;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&address;
  if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    length = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    length = sizeof *v6;
  } else {
    return -EAFNOSUPPORT;
  }
  int fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  // Closed with a reset, not a FIN: a check leaves no TIME_WAIT socket behind
  // (100 jobs checked every second would keep ~6000) and the kernel skips the
  // closing handshake. HAProxy closes its health checks the same way.
  struct linger reset = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  if (connect(fd, (struct sockaddr *)&address, length) < 0 && errno != EINPROGRESS) {
    int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

int usvc_socket_error(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return errno;
  return error;
}

int usvc_unix_datagram_bind(const char *path) {
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  size_t length = strlen(path);
  if (length == 0 || length >= sizeof address.sun_path) return -ENAMETOOLONG;
  memcpy(address.sun_path, path, length);
  struct stat info;
  if (lstat(path, &info) == 0) {
    if (!S_ISSOCK(info.st_mode)) return -EEXIST;
    if (unlink(path) < 0) return -errno;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  mode_t previous = umask(0177);
  int bound = bind(fd, (struct sockaddr *)&address, sizeof address);
  int error = errno;
  umask(previous);
  if (bound < 0) {
    close(fd);
    return -error;
  }
  return fd;
}
