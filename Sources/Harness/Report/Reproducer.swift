import Fuzz
import Reference

/// A standalone C reproducer for a sequence: plain syscalls and the shim's ioctls (its uapi
/// header is embedded), KTAP output, `gcc -static`. It runs in the guest (`harness vm shell
/// --add repro`), needs neither the harness nor the agent, and compares what the kernel does
/// with what the contract predicts, op by op.
///
/// Scope: one logical process with its first thread (most minimized findings); the reproducer
/// forks that process from a reporter, so a SIGBUS or SIGKILL that ends it is reported too.
enum Reproducer {
  struct Unsupported: Error {
    var step: Int
    var reason: String
  }

  /// The C source for `sequence` with the contract's `predicted` observations, or the first op
  /// it cannot express.
  static func generate(
    _ sequence: OpSequence, predicted: [[Observation]], shimHeader: String, source: String
  ) throws(Unsupported) -> String {
    var process: ProcessName?
    var steps: [String] = []
    var expectations: [String] = []
    for (i, op) in sequence.ops.enumerated() {
      func thread(_ t: ThreadRef) throws(Unsupported) {
        guard t.index == 0, t.process == process else {
          throw Unsupported(step: i, reason: "\(t) is not the reproducer's one process and thread")
        }
      }
      let body: String
      switch op {
      case .spawn(let p):
        guard process == nil else { throw Unsupported(step: i, reason: "a second process (\(p))") }
        process = p
        body = "return getpid() > 0 ? 0 : -1; /* this process is \(p) */"
      case .sigbus(let p, let d):
        try thread(ThreadRef(p, 0))
        body = "return set_sigbus(\(d == .handler ? "1" : d == .default ? "0" : "2"));"
      case .mceKill(let t, let a2, let a3):
        try thread(t)
        body = "return sys(prctl(PR_MCE_KILL, \(a2)UL, \(a3)UL, 0UL, 0UL));"
      case .mceKillGet(let t):
        try thread(t)
        body = "return sys(prctl(PR_MCE_KILL_GET, 0UL, 0UL, 0UL, 0UL));"
      case .sigmask(let t, let blocked):
        try thread(t)
        body = "return mask_sigbus(\(blocked ? 1 : 0));"
      case .sysctlEarlyKill(let v):
        body = "return write_file(\"/proc/sys/vm/memory_failure_early_kill\", \"\(v)\\n\");"
      case .mmap(let p, let addr, let pages, let region, let pgoff):
        try thread(ThreadRef(p, 0))
        body = "return map_device(\(SequenceFormat.hex(addr))UL, \(pages)UL, \(region)UL, \(SequenceFormat.hex(pgoff))UL);"
      case .munmap(let p, let addr, let pages):
        try thread(ThreadRef(p, 0))
        body = "return sys(munmap((void *)\(SequenceFormat.hex(addr))UL, \(pages)UL << 12));"
      case .madviseDontFork(let p, let addr, let pages):
        try thread(ThreadRef(p, 0))
        body = "return sys(madvise((void *)\(SequenceFormat.hex(addr))UL, \(pages)UL << 12, MADV_DONTFORK));"
      case .spaceCreate(let s, let first, let last, let cb):
        let flavour = ["none": 0, "nvgrace": 1, "strict": 2][cb.rawValue]!
        body = "return space_create(\(spaceID(s, sequence)), \(flavour), \(SequenceFormat.hex(first))UL, \(SequenceFormat.hex(last))UL);"
      case .spaceRegister(let s):
        body = "return space_op(HARNESS_SHIM_SPACE_REGISTER, \(spaceID(s, sequence)));"
      case .spaceUnregister(let s):
        body = "return space_op(HARNESS_SHIM_SPACE_UNREGISTER, \(spaceID(s, sequence)));"
      case .spaceDestroy(let s):
        body = "return space_op(HARNESS_SHIM_SPACE_DESTROY, \(spaceID(s, sequence)));"
      case .injectSysfs(let t, let pfn):
        try thread(t)
        body = "return hard_offline(\(SequenceFormat.hex(pfn))UL);"
      case .injectShim(let t, let pfn, let flags):
        try thread(t)
        body = "return poison(\(SequenceFormat.hex(pfn))UL, \(SequenceFormat.hex(flags)), HARNESS_SHIM_POISON_CALL);"
      case .injectQueue(let pfn, let flags):
        body = "return poison(\(SequenceFormat.hex(pfn))UL, \(SequenceFormat.hex(flags)), HARNESS_SHIM_POISON_QUEUE);"
      case .injectMCE(let pfn):
        body = """
          printf("# now inject from the QEMU monitor: mce 0 9 0xbd000000000000c0 5 \(SequenceFormat.hex(pfn << 12)) 0x8c\\n");
          \treturn wait_for_enter();
          """
      case .exit(let p, let code):
        try thread(ThreadRef(p, 0))
        body = "exit(\(code));"
      case .fork, .threadCreate, .threadExit:
        throw Unsupported(step: i, reason: "`\(op.keyword)`: the reproducer runs one process with one thread")
      default:
        throw Unsupported(step: i, reason: "`\(op.keyword)`: dma-buf ops are not in the reproducer yet")
      }
      steps.append("static long step_\(i + 1)(void)\n{\n\t\(body)\n}\n")
      expectations.append(expectation(i, op, predicted[i], process: process))
    }
    let n = sequence.ops.count
    let table = (1...max(n, 1)).map { n == 0 ? "" : "\tstep_\($0)," }.joined(separator: "\n")
    let ops = sequence.ops.map { "\t\"\(SequenceFormat.print($0))\"," }.joined(separator: "\n")
    return prelude(source: source, header: shimHeader)
      + steps.joined(separator: "\n") + "\n"
      + "static long (*const steps[])(void) = {\n\(table)\n};\n\nstatic const char *const ops[] = {\n\(ops)\n};\n\n"
      + "static const struct expect expected[] = {\n" + expectations.joined(separator: "\n") + "\n};\n\n"
      + mainFunction(count: n)
  }

  /// The shim's space id for a name: its position among the sequence's spaces.
  private static func spaceID(_ s: SpaceName, _ sequence: OpSequence) -> Int {
    var names: [SpaceName] = []
    for op in sequence.ops {
      if case .spaceCreate(let n, _, _, _) = op, !names.contains(n) { names.append(n) }
    }
    return names.firstIndex(of: s) ?? 255
  }

  private static func expectation(_ i: Int, _ op: Op, _ obs: [Observation], process: ProcessName?) -> String {
    var ret = "0"
    var checkRet = 1
    var sigs: [String] = []
    var death = "0"
    var text: [String] = []
    for o in obs {
      text.append(SequenceFormat.print(o))
      switch o {
      case .result(.number(let v)): ret = String(v)
      case .result(.error(let e)): ret = "-\(e.rawValue)"
      case .result(.symbol): checkRet = 0
      case .signal(let t, _, let code, let addr, _) where t.process == process:
        sigs.append("{ \(code), \(SequenceFormat.hex(addr))UL, 0 }")
      case .optional(.signal(let t, _, let code, let addr, _)) where t.process == process:
        sigs.append("{ \(code), \(SequenceFormat.hex(addr))UL, 1 }")
      case .processEnd(let p, .killed(let sig)) where p == process: death = String(sig)
      case .processEnd(let p, .exited(let code)) where p == process: death = String(-Int(code) - 1000)
      default: break
      }
    }
    let sigList = sigs.isEmpty ? "{ { 0, 0 } }" : "{ " + sigs.joined(separator: ", ") + " }"
    let desc = text.joined(separator: "\\n# ").replacingOccurrences(of: "\"", with: "\\\"")
    return "\t{ \(checkRet), \(ret), \(sigs.count), \(sigList), \(death), \"\(desc)\" },"
  }

  private static func prelude(source: String, header: String) -> String {
    let body = header.split(separator: "\n", omittingEmptySubsequences: false).filter {
      !$0.hasPrefix("#include") && !$0.hasPrefix("#ifndef _UAPI") && !$0.hasPrefix("#define _UAPI")
        && !$0.hasPrefix("#endif /* _UAPI")
    }.joined(separator: "\n")
    return """
      // SPDX-License-Identifier: GPL-2.0-only
      /*
       * Reproducer generated by `harness repro` from \(source).
       *
       * Build: gcc -static -O2 -o repro repro.c
       * Run in the guest (the harness_shim module loaded, as `harness vm shell --add repro`
       * does): ./repro   -- prints KTAP: one test per op, `not ok` where the kernel does not do
       * what the contract (the series' documentation, CONTRACT.md of the harness) predicts.
       *
       * The ops run in a child process (the sequence's one process); the parent reports, so a
       * signal that kills the child is reported as well.
       */
      #define _GNU_SOURCE
      #include <errno.h>
      #include <fcntl.h>
      #include <linux/ioctl.h>
      #include <linux/types.h>
      #include <signal.h>
      #include <stdio.h>
      #include <stdlib.h>
      #include <string.h>
      #include <sys/ioctl.h>
      #include <sys/mman.h>
      #include <sys/prctl.h>
      #include <sys/wait.h>
      #include <unistd.h>

      /* The shim's uapi (VM/shim/harness_shim.h). */
      \(body)

      struct sig {
      \tint code;
      \tunsigned long addr;
      \tint optional;	/* may be absent (CONTRACT C3.5: handled before the next one came) */
      };

      struct expect {
      \tint check_ret;
      \tlong ret;
      \tint nsig;
      \tstruct sig sig[8];
      \tint death; /* 0: lives; > 0: killed by that signal; <= -1000: exit(-1000 - n) */
      \tconst char *text;
      };

      struct record {
      \tlong ret;
      \tint nsig;
      \tstruct sig sig[8];
      };

      static int shim_fd = -1;
      static volatile sig_atomic_t nsig;
      static struct sig sigs[8];

      static void on_sigbus(int signo, siginfo_t *si, void *uc)
      {
      \t(void)signo;
      \t(void)uc;
      \tif (nsig < 8) {
      \t\tsigs[nsig].code = si->si_code;
      \t\tsigs[nsig].addr = (unsigned long)si->si_addr;
      \t\tnsig++;
      \t}
      }

      static __attribute__((unused)) long sys(long r)
      {
      \treturn r < 0 ? -errno : r;
      }

      static __attribute__((unused)) long set_sigbus(int how)
      {
      \tstruct sigaction sa = { .sa_flags = SA_SIGINFO | SA_RESTART };

      \tif (how == 1)
      \t\tsa.sa_sigaction = on_sigbus;
      \telse
      \t\tsa.sa_handler = how == 0 ? SIG_DFL : SIG_IGN;
      \treturn sys(sigaction(SIGBUS, &sa, NULL));
      }

      static __attribute__((unused)) long mask_sigbus(int block)
      {
      \tsigset_t s;

      \tsigemptyset(&s);
      \tsigaddset(&s, SIGBUS);
      \treturn -sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
      }

      static __attribute__((unused)) long write_file(const char *path, const char *text)
      {
      \tint fd = open(path, O_WRONLY);
      \tlong r;

      \tif (fd < 0)
      \t\treturn -errno;
      \tr = write(fd, text, strlen(text));
      \tr = r == (long)strlen(text) ? 0 : (r < 0 ? -errno : -EIO);
      \tclose(fd);
      \treturn r;
      }

      static __attribute__((unused)) long map_device(unsigned long addr, unsigned long pages,
      \t\t       unsigned long region, unsigned long pgoff)
      {
      \tvoid *p = mmap((void *)addr, pages << 12, PROT_READ | PROT_WRITE,
      \t\t       MAP_SHARED | MAP_FIXED_NOREPLACE, shim_fd,
      \t\t       (off_t)(region << HARNESS_SHIM_REGION_SHIFT | pgoff << 12));

      \treturn p == MAP_FAILED ? -errno : 0;
      }

      static __attribute__((unused)) long space_create(unsigned int id, unsigned int callback,
      \t\t\t unsigned long first, unsigned long last)
      {
      \tstruct harness_shim_space s = { .id = id, .callback = callback,
      \t\t\t\t\t.first = first, .last = last };

      \treturn sys(ioctl(shim_fd, HARNESS_SHIM_SPACE_CREATE, &s));
      }

      static __attribute__((unused)) long space_op(unsigned long cmd, unsigned int id)
      {
      \tstruct harness_shim_space_id s = { .id = id };

      \treturn sys(ioctl(shim_fd, cmd, &s));
      }

      static __attribute__((unused)) long poison(unsigned long pfn, unsigned int flags, unsigned int mode)
      {
      \tstruct harness_shim_poison p = { .pfn = pfn, .flags = flags, .mode = mode };
      \tlong r = sys(ioctl(shim_fd, HARNESS_SHIM_POISON, &p));

      \tif (mode == HARNESS_SHIM_POISON_QUEUE)
      \t\tusleep(300000); /* let the worker run */
      \treturn r;
      }

      static __attribute__((unused)) long hard_offline(unsigned long pfn)
      {
      \tchar text[32];

      \tsnprintf(text, sizeof(text), "0x%lx\\n", pfn << 12);
      \treturn write_file("/sys/devices/system/memory/hard_offline_page", text);
      }

      static __attribute__((unused)) long wait_for_enter(void)
      {
      \tchar line[8];

      \tprintf("# press Enter when done\\n");
      \tfflush(stdout);
      \treturn fgets(line, sizeof(line), stdin) ? 0 : -EIO;
      }


      """
  }

  private static func mainFunction(count: Int) -> String {
    """
    static int check(int i, const struct record *r)
    {
    \tconst struct expect *e = &expected[i];
    \tint j = 0, k;

    \tif (e->death)
    \t\treturn 0;
    \tif (e->check_ret && e->ret != r->ret)
    \t\treturn 0;
    \tfor (k = 0; k < e->nsig; k++) {
    \t\tif (j < r->nsig && e->sig[k].code == r->sig[j].code &&
    \t\t    e->sig[k].addr == r->sig[j].addr)
    \t\t\tj++;
    \t\telse if (!e->sig[k].optional)
    \t\t\treturn 0;
    \t}
    \treturn j == r->nsig;
    }

    static void report(int i, const struct record *r, const char *death)
    {
    \tint k, ok = r && check(i, r);

    \tprintf("%sok %d %s\\n", ok ? "" : "not ", i + 1, ops[i]);
    \tif (ok)
    \t\treturn;
    \tprintf("# expected (contract):\\n# %s\\n# observed:\\n", expected[i].text);
    \tif (r) {
    \t\tprintf("# = %ld\\n", r->ret);
    \t\tfor (k = 0; k < r->nsig; k++)
    \t\t\tprintf("# SIGBUS code=%d addr=0x%lx\\n", r->sig[k].code, r->sig[k].addr);
    \t}
    \tif (death)
    \t\tprintf("# %s\\n", death);
    }

    int main(void)
    {
    \tint n = \(count), pipefd[2], status, i = 0;
    \tstruct record r;
    \tchar death[64];
    \tpid_t pid;

    \tsetvbuf(stdout, NULL, _IOLBF, 0);
    \tprintf("KTAP version 1\\n1..%d\\n", n);
    \tif (pipe(pipefd)) {
    \t\tperror("pipe");
    \t\treturn 2;
    \t}
    \tpid = fork();
    \tif (pid == 0) {
    \t\tclose(pipefd[0]);
    \t\tshim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
    \t\tif (shim_fd < 0)
    \t\t\tprintf("# %s: %s (is harness_shim loaded?)\\n", HARNESS_SHIM_DEVICE, strerror(errno));
    \t\tfor (i = 0; i < n; i++) {
    \t\t\tnsig = 0;
    \t\t\tr.ret = steps[i]();
    \t\t\tr.nsig = nsig;
    \t\t\tmemcpy(r.sig, sigs, sizeof(sigs));
    \t\t\tif (write(pipefd[1], &r, sizeof(r)) != sizeof(r))
    \t\t\t\t_exit(2);
    \t\t}
    \t\t_exit(0);
    \t}
    \tclose(pipefd[1]);
    \twhile (i < n && read(pipefd[0], &r, sizeof(r)) == sizeof(r)) {
    \t\treport(i, &r, NULL);
    \t\ti++;
    \t}
    \twaitpid(pid, &status, 0);
    \tif (WIFSIGNALED(status))
    \t\tsnprintf(death, sizeof(death), "the process was killed by signal %d (%s)",
    \t\t\t WTERMSIG(status), strsignal(WTERMSIG(status)));
    \telse
    \t\tsnprintf(death, sizeof(death), "the process exited with status %d", WEXITSTATUS(status));
    \tif (i < n) {
    \t\t/* The op that ended the process: as predicted, or not. */
    \t\tint want = expected[i].death;
    \t\tint got = WIFSIGNALED(status) ? WTERMSIG(status) : -1000 - WEXITSTATUS(status);

    \t\tprintf("%sok %d %s\\n", want == got ? "" : "not ", i + 1, ops[i]);
    \t\tif (want != got)
    \t\t\tprintf("# expected (contract):\\n# %s\\n# observed:\\n# %s\\n", expected[i].text, death);
    \t\tfor (i++; i < n; i++)
    \t\t\tprintf("ok %d %s # SKIP the process has ended\\n", i + 1, ops[i]);
    \t}
    \treturn 0;
    }

    """
  }
}
