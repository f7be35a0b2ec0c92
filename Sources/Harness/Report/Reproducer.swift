import Fuzz
import Reference

/// A standalone C reproducer for a sequence: plain syscalls and the shim's ioctls (its uapi
/// header is embedded), KTAP output, `gcc -static`. It runs in the guest (`harness vm shell
/// --add repro`), needs neither the harness nor the agent, and compares what the kernel does
/// with what the contract predicts, op by op: the result, the signals every thread received,
/// and how processes ended.
///
/// Shape of the program: a coordinator (the parent, a child subreaper) that runs the ops with
/// no process context itself (sysctl, spaces, queued and machine-check triggers), and one
/// forked process per logical process, one thread per logical thread, each serving a channel
/// of its own (a pair of pipes, one each way, all created before anything forks, so every
/// process holds exactly the ends of its own subtree: a process's death closes its ends and the
/// coordinator reads end of file at once). Pipes rather than sockets: the guest kernel has no
/// `CONFIG_NET`.
/// After every op the coordinator asks every live thread for the signals its handler
/// recorded, in creation order, and reaps the processes that ended, as the agent does.
///
/// Scope: the memory-failure ops; the dma-buf ops are refused (the agent runs those).
enum Reproducer {
  struct Unsupported: Error {
    var step: Int
    var reason: String
  }

  /// Logical processes and threads of a sequence, in creation order (the canonical order of
  /// observations), with the fork tree.
  private struct Layout {
    var processes: [ProcessName] = []
    /// `parent[i]`: the process `processes[i]` was forked from (`nil`: spawned).
    var parent: [Int?] = []
    var slots: [ThreadRef] = []

    mutating func process(_ p: ProcessName, parent: Int?) {
      guard !processes.contains(p) else { return }
      processes.append(p)
      self.parent.append(parent)
      thread(ThreadRef(p, 0))
    }

    mutating func thread(_ t: ThreadRef) {
      if !slots.contains(t) { slots.append(t) }
    }

    func index(_ p: ProcessName) -> Int { processes.firstIndex(of: p) ?? -1 }
    func slot(_ t: ThreadRef) -> Int { slots.firstIndex(of: t) ?? -1 }

    /// Whether `q` is `p` or forked (transitively) from it.
    func inSubtree(_ q: Int, of p: Int) -> Bool {
      var x: Int? = q
      while let i = x {
        if i == p { return true }
        x = parent[i]
      }
      return false
    }
  }

  /// The C source for `sequence` with the contract's `predicted` observations, or the first op
  /// it cannot express.
  static func generate(
    _ sequence: OpSequence, predicted: [[Observation]], shimHeader: String, source: String
  ) throws(Unsupported) -> String {
    var layout = Layout()
    for op in sequence.ops {
      switch op {
      case .spawn(let p): layout.process(p, parent: nil)
      case .fork(let t, let child):
        layout.process(t.process, parent: nil)
        layout.thread(t)
        layout.process(child, parent: layout.index(t.process))
      default:
        for t in threads(of: op) {
          layout.process(t.process, parent: nil)
          layout.thread(t)
        }
      }
    }
    var functions: [String] = []
    var steps: [String] = []
    var expectations: [String] = []
    for (i, op) in sequence.ops.enumerated() {
      let (kind, target, arg, body) = try step(i, op, sequence, layout)
      if let body { functions.append("static long fn_\(i + 1)(void)\n{\n\t\(body)\n}\n") }
      steps.append("\t{ \(kind), \(target), \(arg), \(body == nil ? "NULL" : "fn_\(i + 1)") },")
      let signals = predicted[i].count { if case .signal = $0.required { true } else { false } }
      guard signals <= 16 else { throw Unsupported(step: i, reason: "more than 16 signals in one op") }
      expectations.append(expectation(predicted[i], layout))
    }
    let n = sequence.ops.count
    let ops = sequence.ops.map { "\t\"\(SequenceFormat.print($0))\"," }
    let procs = layout.processes.map { "\"\($0)\"" }.joined(separator: ", ")
    let slotNames = layout.slots.map { "\"\($0)\"" }.joined(separator: ", ")
    let slotProc = layout.slots.map { String(layout.index($0.process)) }.joined(separator: ", ")
    let slotIndex = layout.slots.map { String($0.index) }.joined(separator: ", ")
    let subtree = layout.processes.indices.map { p in
      "\t{ " + layout.processes.indices.map { layout.inSubtree($0, of: p) ? "1" : "0" }.joined(separator: ", ") + " },"
    }
    let np = max(layout.processes.count, 1)
    let ns = max(layout.slots.count, 1)
    return prelude(source: source, header: shimHeader)
      + """
      #define NPROC \(np)
      #define NSLOT \(ns)
      #define NSTEP \(max(n, 1))

      static const char *const proc_name[NPROC] = { \(procs.isEmpty ? "\"\"" : procs) };
      static const char *const slot_name[NSLOT] = { \(slotNames.isEmpty ? "\"\"" : slotNames) };
      /* The process of each thread slot, and the thread's index in it. */
      static const int slot_proc[NSLOT] = { \(slotProc.isEmpty ? "0" : slotProc) };
      static const int slot_index[NSLOT] = { \(slotIndex.isEmpty ? "0" : slotIndex) };
      /* subtree[p][q]: q is p or was forked (transitively) from p. */
      static const unsigned char subtree[NPROC][NPROC] = {
      \(subtree.isEmpty ? "\t{ 1 }," : subtree.joined(separator: "\n"))
      };


      """
      + runtime
      + functions.joined(separator: "\n") + "\n"
      + "static const struct step steps[NSTEP] = {\n" + (steps.isEmpty ? ["\t{ 0 },"] : steps).joined(separator: "\n") + "\n};\n\n"
      + "static const char *const ops[NSTEP] = {\n" + (ops.isEmpty ? ["\t\"\","] : ops).joined(separator: "\n") + "\n};\n\n"
      + "static const struct expect expected[NSTEP] = {\n" + (expectations.isEmpty ? ["\t{ 0 },"] : expectations).joined(separator: "\n") + "\n};\n\n"
      + mainFunction(count: n)
  }

  /// The threads an op names (that must exist for it to run).
  private static func threads(of op: Op) -> [ThreadRef] {
    switch op {
    case .threadCreate(let t), .threadExit(let t), .mceKill(let t, _, _), .mceKillGet(let t),
      .sigmask(let t, _), .injectSysfs(let t, _), .injectShim(let t, _, _):
      [t]
    case .exit(let p, _), .sigbus(let p, _), .mmap(let p, _, _, _, _), .munmap(let p, _, _),
      .madviseDontFork(let p, _, _):
      [ThreadRef(p, 0)]
    default: []
    }
  }

  /// One step: its kind, target (slot or process), argument, and the function that does the
  /// work (in the target thread, or in the coordinator for STEP_LOCAL).
  private static func step(_ i: Int, _ op: Op, _ sequence: OpSequence, _ l: Layout)
    throws(Unsupported) -> (String, Int, Int, String?)
  {
    let hex: (UInt64) -> String = SequenceFormat.hex
    func inThread(_ t: ThreadRef, _ body: String) -> (String, Int, Int, String?) {
      ("STEP_THREAD", l.slot(t), 0, body)
    }
    switch op {
    case .spawn(let p): return ("STEP_SPAWN", l.index(p), 0, nil)
    case .fork(let t, let child): return ("STEP_FORK", l.slot(t), l.index(child), nil)
    case .threadCreate(let t): return ("STEP_THREAD_CREATE", l.slot(t), 0, nil)
    case .threadExit(let t): return ("STEP_THREAD_EXIT", l.slot(t), 0, nil)
    case .exit(let p, let code): return ("STEP_EXIT", l.slot(ThreadRef(p, 0)), Int(code), nil)
    case .sigbus(let p, let d):
      return inThread(ThreadRef(p, 0), "return set_sigbus(\(d == .handler ? "1" : d == .default ? "0" : "2"));")
    case .mceKill(let t, let a2, let a3):
      return inThread(t, "return sys(prctl(PR_MCE_KILL, \(a2)UL, \(a3)UL, 0UL, 0UL));")
    case .mceKillGet(let t):
      return inThread(t, "return sys(prctl(PR_MCE_KILL_GET, 0UL, 0UL, 0UL, 0UL));")
    case .sigmask(let t, let blocked):
      return inThread(t, "return mask_sigbus(\(blocked ? 1 : 0));")
    case .mmap(let p, let addr, let pages, let region, let pgoff):
      return inThread(ThreadRef(p, 0), "return map_device(\(hex(addr))UL, \(pages)UL, \(region)UL, \(hex(pgoff))UL);")
    case .munmap(let p, let addr, let pages):
      return inThread(ThreadRef(p, 0), "return sys(munmap((void *)\(hex(addr))UL, \(pages)UL << 12));")
    case .madviseDontFork(let p, let addr, let pages):
      return inThread(ThreadRef(p, 0), "return sys(madvise((void *)\(hex(addr))UL, \(pages)UL << 12, MADV_DONTFORK));")
    case .injectSysfs(let t, let pfn):
      return inThread(t, "return hard_offline(\(hex(pfn))UL);")
    case .injectShim(let t, let pfn, let flags):
      return inThread(t, "return poison(\(hex(pfn))UL, \(hex(UInt64(flags))), HARNESS_SHIM_POISON_CALL);")
    case .sysctlEarlyKill(let v):
      return ("STEP_LOCAL", 0, 0, "return write_file(\"/proc/sys/vm/memory_failure_early_kill\", \"\(v)\\n\");")
    case .spaceCreate(let s, let first, let last, let cb):
      let flavour = ["none": 0, "nvgrace": 1, "strict": 2][cb.rawValue]!
      return ("STEP_LOCAL", 0, 0, "return space_create(\(spaceID(s, sequence)), \(flavour), \(hex(first))UL, \(hex(last))UL);")
    case .spaceRegister(let s):
      return ("STEP_LOCAL", 0, 0, "return space_op(HARNESS_SHIM_SPACE_REGISTER, \(spaceID(s, sequence)));")
    case .spaceUnregister(let s):
      return ("STEP_LOCAL", 0, 0, "return space_op(HARNESS_SHIM_SPACE_UNREGISTER, \(spaceID(s, sequence)));")
    case .spaceDestroy(let s):
      return ("STEP_LOCAL", 0, 0, "return space_op(HARNESS_SHIM_SPACE_DESTROY, \(spaceID(s, sequence)));")
    case .injectQueue(let pfn, let flags):
      return ("STEP_LOCAL", 0, 0, "return poison(\(hex(pfn))UL, \(hex(UInt64(flags))), HARNESS_SHIM_POISON_QUEUE);")
    case .injectMCE(let pfn):
      return (
        "STEP_LOCAL", 0, 0,
        """
        printf("# now inject from the QEMU monitor: mce 0 9 0xbd000000000000c0 5 \(hex(pfn << 12)) 0x8c\\n");
        \treturn wait_for_enter();
        """
      )
    default:
      throw Unsupported(step: i, reason: "`\(op.keyword)`: dma-buf ops are not in the reproducer yet")
    }
  }

  /// The shim's space id for a name: its position among the sequence's spaces.
  private static func spaceID(_ s: SpaceName, _ sequence: OpSequence) -> Int {
    var names: [SpaceName] = []
    for op in sequence.ops {
      if case .spaceCreate(let n, _, _, _) = op, !names.contains(n) { names.append(n) }
    }
    return names.firstIndex(of: s) ?? 255
  }

  /// One `struct expect` initializer: result, signals per slot (optional ones marked), process
  /// ends, and the contract's text for the report.
  private static func expectation(_ obs: [Observation], _ l: Layout) -> String {
    var ret = "0"
    var checkRet = 1
    var sigs: [String] = []
    var deaths: [String] = []
    var text: [String] = []
    for o in obs {
      text.append(SequenceFormat.print(o))
      switch o {
      case .result(.number(let v)): ret = String(v)
      case .result(.error(let e)): ret = "-\(e.rawValue)"
      case .result(.symbol): checkRet = 0
      case .signal(let t, _, let code, let addr, _):
        sigs.append("{ \(l.slot(t)), \(code), \(SequenceFormat.hex(addr))UL, 0 }")
      case .optional(.signal(let t, _, let code, let addr, _)):
        sigs.append("{ \(l.slot(t)), \(code), \(SequenceFormat.hex(addr))UL, 1 }")
      case .processEnd(let p, .killed(let sig)): deaths.append("{ \(l.index(p)), \(sig) }")
      case .processEnd(let p, .exited(let code)): deaths.append("{ \(l.index(p)), \(-Int(code & 0xff) - 1000) }")
      default: break
      }
    }
    func list(_ xs: [String]) -> String { xs.isEmpty ? "{ { 0 } }" : "{ " + xs.joined(separator: ", ") + " }" }
    let desc = text.joined(separator: "\\n# ").replacingOccurrences(of: "\"", with: "\\\"")
    return "\t{ \(checkRet), \(ret), \(sigs.count), \(list(sigs)), \(deaths.count), \(list(deaths)), \"\(desc)\" },"
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
       * Build: gcc -static -O2 -pthread -o repro repro.c
       * Run in the guest (the harness_shim module loaded, as `harness vm shell --add repro`
       * does): ./repro   -- prints KTAP: one test per op, `not ok` where the kernel does not do
       * what the contract (the series' documentation, CONTRACT.md of the harness) predicts.
       *
       * Every logical process of the sequence is a forked process, every logical thread a
       * thread serving a pair of pipes; this process coordinates, collects the signals each thread's
       * handler recorded after every op, and reaps the processes that ended.
       *
       * Run it once per boot: the shim's PFN spaces (ids 0, 1, ... in order of creation) live
       * on after it exits.
       */
      #define _GNU_SOURCE
      #include <errno.h>
      #include <fcntl.h>
      #include <linux/ioctl.h>
      #include <linux/types.h>
      #include <pthread.h>
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


      """
  }

  /// The C runtime shared by every reproducer (after the layout tables).
  private static let runtime = """
    enum { STEP_LOCAL, STEP_THREAD, STEP_SPAWN, STEP_FORK, STEP_THREAD_CREATE, STEP_THREAD_EXIT, STEP_EXIT };
    enum { MSG_RUN, MSG_SYNC, MSG_FORK, MSG_THREAD, MSG_THREAD_EXIT, MSG_EXIT };

    struct step {
    \tint kind;
    \tint target;	/* a slot (thread ops), a process (STEP_SPAWN) */
    \tint arg;	/* STEP_FORK: the child process; STEP_EXIT: the exit code */
    \tlong (*fn)(void);
    };

    struct sig {
    \tint slot;
    \tint code;
    \tunsigned long addr;
    \tint optional;	/* may be absent (CONTRACT C3.5: handled before the next one came) */
    };

    struct death {
    \tint proc;
    \tint how;	/* > 0: killed by that signal; <= -1000: exit(-1000 - how) */
    };

    struct expect {
    \tint check_ret;
    \tlong ret;
    \tint nsig;
    \tstruct sig sig[16];
    \tint ndeath;
    \tstruct death death[NPROC];
    \tconst char *text;
    };

    struct msg {
    \tint kind;
    \tint step;
    \tint arg;
    };

    struct reply {
    \tlong ret;
    \tint nsig;
    \tstruct sig sig[8];
    };

    /* Defined after the step functions, at the end of the file. */
    static const struct step steps[NSTEP];
    static const char *const ops[NSTEP];
    static const struct expect expected[NSTEP];

    static int shim_fd = -1;
    /* A channel's end: messages have a fixed size below PIPE_BUF, so a pipe keeps them whole. */
    struct end {
    \tint rx;
    \tint tx;
    };

    static struct end sv[NSLOT][2];	/* [0]: the coordinator's end, [1]: the thread's */

    static void end_close(struct end *e)
    {
    \tif (e->rx >= 0)
    \t\tclose(e->rx);
    \tif (e->tx >= 0)
    \t\tclose(e->tx);
    \te->rx = e->tx = -1;
    }

    static int chan_open(struct end e[2])
    {
    \tint down[2], up[2];

    \tif (pipe(down))
    \t\treturn -1;
    \tif (pipe(up)) {
    \t\tclose(down[0]);
    \t\tclose(down[1]);
    \t\treturn -1;
    \t}
    \te[0] = (struct end) { .rx = up[0], .tx = down[1] };
    \te[1] = (struct end) { .rx = down[0], .tx = up[1] };
    \treturn 0;
    }
    static __thread int my_slot = -1;
    static __thread volatile sig_atomic_t my_nsig;
    static __thread struct sig my_sigs[8];

    static void on_sigbus(int signo, siginfo_t *si, void *uc)
    {
    \t(void)signo;
    \t(void)uc;
    \tif (my_nsig < 8) {
    \t\tmy_sigs[my_nsig].slot = my_slot;
    \t\tmy_sigs[my_nsig].code = si->si_code;
    \t\tmy_sigs[my_nsig].addr = (unsigned long)si->si_addr;
    \t\tmy_nsig++;
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
    \treturn -pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &s, NULL);
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
    \t\t\t\t\t\t   unsigned long region, unsigned long pgoff)
    {
    \tvoid *p = mmap((void *)addr, pages << 12, PROT_READ | PROT_WRITE,
    \t\t       MAP_SHARED | MAP_FIXED_NOREPLACE, shim_fd,
    \t\t       (off_t)(region << HARNESS_SHIM_REGION_SHIFT | pgoff << 12));

    \treturn p == MAP_FAILED ? -errno : 0;
    }

    static __attribute__((unused)) long space_create(unsigned int id, unsigned int callback,
    \t\t\t\t\t\t     unsigned long first, unsigned long last)
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

    /* In a new process `proc`: keep the thread ends of its own subtree only. */
    static void keep_subtree(int proc)
    {
    \tint s;

    \tfor (s = 0; s < NSLOT; s++) {
    \t\tend_close(&sv[s][0]);
    \t\tif (!subtree[proc][slot_proc[s]])
    \t\t\tend_close(&sv[s][1]);
    \t}
    }

    /* In the parent of `proc`: drop the thread ends that went with it. */
    static void drop_subtree(int proc)
    {
    \tint s;

    \tfor (s = 0; s < NSLOT; s++) {
    \t\tif (subtree[proc][slot_proc[s]])
    \t\t\tend_close(&sv[s][1]);
    \t}
    }

    static int first_slot(int proc)
    {
    \tint s;

    \tfor (s = 0; s < NSLOT; s++)
    \t\tif (slot_proc[s] == proc && slot_index[s] == 0)
    \t\t\treturn s;
    \treturn -1;
    }

    static void serve(int slot);

    static void *thread_main(void *arg)
    {
    \tserve((int)(long)arg);
    \treturn NULL;
    }

    /*
     * fork twice, the middle process exits at once: the new process is reparented to the
     * coordinator (a child subreaper), which reaps it like every other.
     */
    static long do_fork(int proc)
    {
    \tint p[2];
    \tpid_t mid, pid = -1;

    \tif (pipe(p))
    \t\treturn -errno;
    \tmid = fork();
    \tif (mid == 0) {
    \t\tpid_t child = fork();

    \t\tif (child == 0) {
    \t\t\tclose(p[0]);
    \t\t\tclose(p[1]);
    \t\t\tkeep_subtree(proc);
    \t\t\tmy_nsig = 0;
    \t\t\tserve(first_slot(proc));
    \t\t}
    \t\tif (write(p[1], &child, sizeof(child)) != sizeof(child))
    \t\t\t_exit(1);
    \t\t_exit(0);
    \t}
    \tclose(p[1]);
    \tif (mid < 0 || read(p[0], &pid, sizeof(pid)) != sizeof(pid))
    \t\tpid = -1;
    \tclose(p[0]);
    \tif (mid > 0)
    \t\twaitpid(mid, NULL, 0);
    \tdrop_subtree(proc);
    \treturn pid < 0 ? -EAGAIN : pid;
    }

    /* A logical thread: run what the coordinator sends, answer with the signals received. */
    static void serve(int slot)
    {
    \tconst struct end *e = &sv[slot][1];
    \tstruct reply r;
    \tstruct msg m;
    \tpthread_t t;

    \tmy_slot = slot;
    \tfor (;;) {
    \t\tssize_t n = read(e->rx, &m, sizeof(m));

    \t\tif (n < 0 && errno == EINTR)
    \t\t\tcontinue;
    \t\tif (n != sizeof(m))
    \t\t\t_exit(0);	/* the coordinator is gone */
    \t\tmemset(&r, 0, sizeof(r));
    \t\tswitch (m.kind) {
    \t\tcase MSG_RUN:
    \t\t\tr.ret = steps[m.step].fn();
    \t\t\tbreak;
    \t\tcase MSG_FORK:
    \t\t\tr.ret = do_fork(m.arg);
    \t\t\tbreak;
    \t\tcase MSG_THREAD:
    \t\t\tr.ret = -pthread_create(&t, NULL, thread_main, (void *)(long)m.arg);
    \t\t\tif (!r.ret)
    \t\t\t\tpthread_detach(t);
    \t\t\tbreak;
    \t\tcase MSG_THREAD_EXIT:
    \t\t\tr.ret = slot_index[slot] ? 0 : -EINVAL;
    \t\t\tbreak;
    \t\tcase MSG_EXIT:
    \t\t\t_exit(m.arg);
    \t\t}
    \t\tr.nsig = my_nsig;
    \t\tmemcpy(r.sig, my_sigs, sizeof(r.sig));
    \t\tmy_nsig = 0;
    \t\tif (write(e->tx, &r, sizeof(r)) != sizeof(r))
    \t\t\t_exit(0);
    \t\tif (m.kind == MSG_THREAD_EXIT && slot_index[slot])
    \t\t\tpthread_exit(NULL);
    \t}
    }

    /* Coordinator state: 0 unused, 1 live, 2 gone. */
    static int proc_state[NPROC], slot_state[NSLOT];
    static pid_t proc_pid[NPROC];

    struct observed {
    \tlong ret;
    \tint nsig;
    \tstruct sig sig[64];
    \tint ndeath;
    \tstruct death death[NPROC];
    };

    static void add_sigs(struct observed *o, const struct reply *r)
    {
    \tint k;

    \tfor (k = 0; k < r->nsig && o->nsig < 64; k++)
    \t\to->sig[o->nsig++] = r->sig[k];
    }

    /* The process of `slot` is gone: reap it and record how it ended. */
    static void reap(int proc, struct observed *o)
    {
    \tint status, s;

    \tif (proc_state[proc] != 1)
    \t\treturn;
    \tproc_state[proc] = 2;
    \tfor (s = 0; s < NSLOT; s++)
    \t\tif (slot_proc[s] == proc && slot_state[s] == 1)
    \t\t\tslot_state[s] = 2;
    \tif (waitpid(proc_pid[proc], &status, 0) != proc_pid[proc])
    \t\treturn;
    \to->death[o->ndeath].proc = proc;
    \to->death[o->ndeath].how = WIFSIGNALED(status) ? WTERMSIG(status) : -1000 - WEXITSTATUS(status);
    \to->ndeath++;
    }

    /* Sends `m` to a live slot and waits for its reply; 0, or -ESRCH if its process is gone. */
    static int call(int slot, const struct msg *m, struct reply *r, struct observed *o)
    {
    \tssize_t n;

    \tif (slot < 0 || slot_state[slot] != 1)
    \t\treturn -ESRCH;
    \tif (write(sv[slot][0].tx, m, sizeof(*m)) != sizeof(*m)) {
    \t\treap(slot_proc[slot], o);
    \t\treturn -ESRCH;
    \t}
    \tdo
    \t\tn = read(sv[slot][0].rx, r, sizeof(*r));
    \twhile (n < 0 && errno == EINTR);
    \tif (n != sizeof(*r)) {
    \t\treap(slot_proc[slot], o);
    \t\treturn -ESRCH;
    \t}
    \tadd_sigs(o, r);
    \treturn 0;
    }

    static void run_step(int i, struct observed *o)
    {
    \tconst struct step *st = &steps[i];
    \tstruct msg m = { .step = i, .arg = st->arg };
    \tstruct reply r;
    \tint p, err;
    \tpid_t pid;

    \tswitch (st->kind) {
    \tcase STEP_LOCAL:
    \t\to->ret = st->fn();
    \t\treturn;
    \tcase STEP_SPAWN:
    \t\tif (proc_state[st->target]) {
    \t\t\to->ret = -EEXIST;
    \t\t\treturn;
    \t\t}
    \t\tpid = fork();
    \t\tif (pid == 0) {
    \t\t\tkeep_subtree(st->target);
    \t\t\tserve(first_slot(st->target));
    \t\t}
    \t\tdrop_subtree(st->target);
    \t\tif (pid < 0) {
    \t\t\to->ret = -errno;
    \t\t\treturn;
    \t\t}
    \t\tproc_state[st->target] = 1;
    \t\tproc_pid[st->target] = pid;
    \t\tslot_state[first_slot(st->target)] = 1;
    \t\to->ret = pid;
    \t\treturn;
    \tcase STEP_FORK:
    \t\tif (proc_state[st->arg]) {
    \t\t\to->ret = -EEXIST;
    \t\t\treturn;
    \t\t}
    \t\tm.kind = MSG_FORK;
    \t\tbreak;
    \tcase STEP_THREAD_CREATE:
    \t\tp = slot_proc[st->target];
    \t\tif (proc_state[p] != 1) {
    \t\t\to->ret = -ESRCH;
    \t\t\treturn;
    \t\t}
    \t\tif (slot_state[st->target]) {
    \t\t\to->ret = -EEXIST;
    \t\t\treturn;
    \t\t}
    \t\tm.kind = MSG_THREAD;
    \t\tm.arg = st->target;
    \t\terr = call(first_slot(p), &m, &r, o);
    \t\to->ret = err ? err : r.ret;
    \t\tif (!o->ret)
    \t\t\tslot_state[st->target] = 1;
    \t\treturn;
    \tcase STEP_THREAD_EXIT:
    \t\tm.kind = MSG_THREAD_EXIT;
    \t\tbreak;
    \tcase STEP_EXIT:
    \t\tif (st->target < 0 || slot_state[st->target] != 1) {
    \t\t\to->ret = -ESRCH;
    \t\t\treturn;
    \t\t}
    \t\tm.kind = MSG_EXIT;
    \t\tif (write(sv[st->target][0].tx, &m, sizeof(m)) == sizeof(m))
    \t\t\t(void)!read(sv[st->target][0].rx, &r, sizeof(r));	/* EOF when it is gone */
    \t\treap(slot_proc[st->target], o);
    \t\to->ret = 0;
    \t\treturn;
    \tdefault:
    \t\tm.kind = MSG_RUN;
    \t\tbreak;
    \t}
    \terr = call(st->target, &m, &r, o);
    \to->ret = err ? err : r.ret;
    \tif (err)
    \t\treturn;
    \tif (st->kind == STEP_FORK && r.ret > 0) {
    \t\tproc_state[st->arg] = 1;
    \t\tproc_pid[st->arg] = (pid_t)r.ret;
    \t\tslot_state[first_slot(st->arg)] = 1;
    \t}
    \tif (st->kind == STEP_THREAD_EXIT && !r.ret)
    \t\tslot_state[st->target] = 2;
    }

    /* After an op: every live thread reports its signals, in creation order. */
    static void sync_all(struct observed *o)
    {
    \tstruct msg m = { .kind = MSG_SYNC };
    \tstruct reply r;
    \tint s;

    \tfor (s = 0; s < NSLOT; s++)
    \t\tif (slot_state[s] == 1)
    \t\t\tcall(s, &m, &r, o);
    }

    /*
     * Canonical order: signals by the creation order of their threads (each thread's in the
     * order received), process ends by the creation order of the processes.
     */
    static void sort_observed(struct observed *o)
    {
    \tint a, b;

    \tfor (a = 1; a < o->nsig; a++)
    \t\tfor (b = a; b > 0 && o->sig[b - 1].slot > o->sig[b].slot; b--) {
    \t\t\tstruct sig t = o->sig[b];

    \t\t\to->sig[b] = o->sig[b - 1];
    \t\t\to->sig[b - 1] = t;
    \t\t}
    \tfor (a = 1; a < o->ndeath; a++)
    \t\tfor (b = a; b > 0 && o->death[b - 1].proc > o->death[b].proc; b--) {
    \t\t\tstruct death t = o->death[b];

    \t\t\to->death[b] = o->death[b - 1];
    \t\t\to->death[b - 1] = t;
    \t\t}
    }

    static int check(int i, const struct observed *o)
    {
    \tconst struct expect *e = &expected[i];
    \tint j = 0, k;

    \tif (e->check_ret && e->ret != o->ret)
    \t\treturn 0;
    \tfor (k = 0; k < e->nsig; k++) {
    \t\tif (j < o->nsig && e->sig[k].slot == o->sig[j].slot &&
    \t\t    e->sig[k].code == o->sig[j].code && e->sig[k].addr == o->sig[j].addr)
    \t\t\tj++;
    \t\telse if (!e->sig[k].optional)
    \t\t\treturn 0;
    \t}
    \tif (j != o->nsig || e->ndeath != o->ndeath)
    \t\treturn 0;
    \tfor (k = 0; k < e->ndeath; k++)
    \t\tif (e->death[k].proc != o->death[k].proc || e->death[k].how != o->death[k].how)
    \t\t\treturn 0;
    \treturn 1;
    }

    static void print_death(const struct death *d)
    {
    \tif (d->how > 0)
    \t\tprintf("# exit %s signal=SIG%s\\n", proc_name[d->proc], sigabbrev_np(d->how) ? sigabbrev_np(d->how) : "?");
    \telse
    \t\tprintf("# exit %s code=%d\\n", proc_name[d->proc], -1000 - d->how);
    }

    static void report(int i, const struct observed *o)
    {
    \tint k, ok = check(i, o);

    \tprintf("%sok %d %s\\n", ok ? "" : "not ", i + 1, ops[i]);
    \tif (ok)
    \t\treturn;
    \tprintf("# expected (contract):\\n# %s\\n# observed:\\n# = %ld\\n", expected[i].text, o->ret);
    \tfor (k = 0; k < o->nsig; k++)
    \t\tprintf("# sig %s SIGBUS %s addr=0x%lx\\n", slot_name[o->sig[k].slot],
    \t\t       o->sig[k].code == 4 ? "AR" : o->sig[k].code == 5 ? "AO" : "code=?", o->sig[k].addr);
    \tfor (k = 0; k < o->ndeath; k++)
    \t\tprint_death(&o->death[k]);
    }


    """

  private static func mainFunction(count: Int) -> String {
    """
    int main(void)
    {
    \tint i, s;

    \tsetvbuf(stdout, NULL, _IOLBF, 0);
    \tprintf("KTAP version 1\\n1..%d\\n", \(count));
    \tif (prctl(PR_SET_CHILD_SUBREAPER, 1UL, 0UL, 0UL, 0UL))
    \t\tperror("PR_SET_CHILD_SUBREAPER");
    \tshim_fd = open(HARNESS_SHIM_DEVICE, O_RDWR | O_CLOEXEC);
    \tif (shim_fd < 0)
    \t\tprintf("# %s: %s (is harness_shim loaded?)\\n", HARNESS_SHIM_DEVICE, strerror(errno));
    \t/* A write to a process that is gone fails with EPIPE (the processes inherit this). */
    \tsignal(SIGPIPE, SIG_IGN);
    \tfor (s = 0; s < NSLOT; s++) {
    \t\tif (chan_open(sv[s])) {
    \t\t\tperror("pipe");
    \t\t\treturn 2;
    \t\t}
    \t}
    \tfor (i = 0; i < \(count); i++) {
    \t\tstruct observed o;

    \t\tmemset(&o, 0, sizeof(o));
    \t\trun_step(i, &o);
    \t\tsync_all(&o);
    \t\tsort_observed(&o);
    \t\treport(i, &o);
    \t}
    \treturn 0;
    }

    """
  }
}
