// Fibers for the host emulator (cuda_emu.h): one stack per emulated CUDA thread and a switch
// between stacks on the same OS thread. Host-only; never part of the addon.
//
//   FiberStacks      guard-paged stacks, reused from launch to launch (mmap: a stack overflow faults
//                    at the guard page instead of corrupting the neighbouring fiber's stack)
//   FiberContext     a suspended execution: Start(stack, entry, arg) prepares one that will call
//                    entry(arg) when first switched to; entry must never return (it switches away
//                    for good instead)
//   SwitchFiber(from, to)
//                    saves the running execution into `from` and resumes `to`
//
// On x86-64 the switch is a few instructions of assembly (System V ABI: the callee-saved registers,
// MXCSR and the x87 control word), about a hundred times cheaper than ucontext's swapcontext, which
// makes a signal-mask system call on every switch; the emulator switches on every warp shuffle, so
// this is what sets its speed. Other machines use ucontext (-DSSLINV_EMU_UCONTEXT forces it on
// x86-64 too, to test that path: the emulation programs pass with it, about 5x slower).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if !defined(__x86_64__) || defined(SSLINV_EMU_UCONTEXT)
#include <ucontext.h>
#endif

// Under AddressSanitizer (npm run test:asan) the switches are announced to it, as its fiber API
// asks, so it knows which stack is running; and a stack is unpoisoned when a new fiber starts on it:
// the last launch's fibers never returned from their frames, whose redzones would otherwise still be
// marked and be reported as stack overflows by the next fiber that uses the same stack.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SSLINV_EMU_ASAN 1
#endif

#if defined(__x86_64__) && !defined(SSLINV_EMU_UCONTEXT)
// void sslinv_emu_switch(void** save_sp, void* load_sp): push the callee-saved registers and the
// floating-point control words, store the stack pointer in *save_sp, load load_sp, pop the same,
// return into the other execution. sslinv_emu_fiber_start is where a new fiber's first switch
// returns to: it calls entry (r13) with arg (r12) on a 16-byte-aligned stack. Weak, because every
// emulation translation unit that includes this header emits them.
extern "C" void sslinv_emu_switch(void** save_sp, void* load_sp);
extern "C" void sslinv_emu_fiber_start();
asm(R"(
  .text
  .weak sslinv_emu_switch
  .type sslinv_emu_switch, @function
sslinv_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size sslinv_emu_switch, .-sslinv_emu_switch

  .weak sslinv_emu_fiber_start
  .type sslinv_emu_fiber_start, @function
sslinv_emu_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size sslinv_emu_fiber_start, .-sslinv_emu_fiber_start
)");
#endif

namespace sslinv_emu {

// n stacks of `bytes` each (a multiple of the page size), each above a PROT_NONE guard page.
class FiberStacks {
 public:
  static constexpr size_t kStackBytes = size_t{512} << 10;  // kernels keep their arrays in "registers": small

  FiberStacks() = default;
  FiberStacks(const FiberStacks&) = delete;
  FiberStacks& operator=(const FiberStacks&) = delete;
  ~FiberStacks() { Release(); }

  // The top (highest address, 16-byte aligned) of stack i; grows the pool to n stacks if needed.
  unsigned char* Top(size_t i, size_t n) {
    if (n > count_) Reserve(n);
    return base_ + (i + 1) * Slot();
  }

 private:
  static size_t Page() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
  static size_t Slot() { return kStackBytes + Page(); }

  void Reserve(size_t n) {
    Release();
    void* p = mmap(nullptr, n * Slot(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      std::fprintf(stderr, "cuda_emu: cannot map %zu fiber stacks\n", n);
      std::abort();
    }
    base_ = static_cast<unsigned char*>(p);
    count_ = n;
    for (size_t i = 0; i < n; ++i) mprotect(base_ + i * Slot(), Page(), PROT_NONE);  // the guard below stack i
  }

  void Release() {
    if (base_ != nullptr) munmap(base_, count_ * Slot());
    base_ = nullptr;
    count_ = 0;
  }

  unsigned char* base_ = nullptr;
  size_t count_ = 0;
};

// The stack a context runs on, for AddressSanitizer's fiber API; a context on its OS thread's own
// stack learns its bounds when the first fiber it starts calls FiberEntered.
struct FiberStackBounds {
  const void* bottom = nullptr;
  size_t size = 0;
};

#if defined(__x86_64__) && !defined(SSLINV_EMU_UCONTEXT)
struct FiberContext {
  void* sp = nullptr;
  FiberStackBounds bounds;

  void Start(unsigned char* stack_top, void (*entry)(void*), void* arg) {
    bounds = {stack_top - FiberStacks::kStackBytes, FiberStacks::kStackBytes};
#ifdef SSLINV_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack_top - FiberStacks::kStackBytes, FiberStacks::kStackBytes);
#endif
    // The frame sslinv_emu_switch pops, lowest address first: control words, r15, r14, r13, r12,
    // rbx, rbp, return address. After the pops and the ret the stack pointer is stack_top itself
    // (16-byte aligned), which is what the call in sslinv_emu_fiber_start needs.
    auto* frame = reinterpret_cast<uint64_t*>(stack_top) - 8;
    uint32_t mxcsr;
    uint16_t fcw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fcw));
    frame[0] = mxcsr | (static_cast<uint64_t>(fcw) << 32);
    frame[1] = 0;                                       // r15
    frame[2] = 0;                                       // r14
    frame[3] = reinterpret_cast<uint64_t>(entry);       // r13
    frame[4] = reinterpret_cast<uint64_t>(arg);         // r12
    frame[5] = 0;                                       // rbx
    frame[6] = 0;                                       // rbp
    frame[7] = reinterpret_cast<uint64_t>(&sslinv_emu_fiber_start);
    sp = frame;
  }
};

inline void SwitchStacks(FiberContext& from, FiberContext& to) { sslinv_emu_switch(&from.sp, to.sp); }
#else
struct FiberContext {
  ucontext_t uc{};
  FiberStackBounds bounds;

  // The context must stay where it is until the fiber ends (makecontext is handed its address).
  void Start(unsigned char* stack_top, void (*entry)(void*), void* arg) {
    bounds = {stack_top - FiberStacks::kStackBytes, FiberStacks::kStackBytes};
#ifdef SSLINV_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack_top - FiberStacks::kStackBytes, FiberStacks::kStackBytes);
#endif
    entry_ = entry;
    arg_ = arg;
    getcontext(&uc);
    uc.uc_stack.ss_sp = stack_top - FiberStacks::kStackBytes;
    uc.uc_stack.ss_size = FiberStacks::kStackBytes;
    uc.uc_link = nullptr;
    // makecontext passes int arguments, so the address goes in two halves.
    const auto self = reinterpret_cast<uintptr_t>(this);
    makecontext(&uc, reinterpret_cast<void (*)()>(&Trampoline), 2, static_cast<unsigned>(self >> 32),
                static_cast<unsigned>(self & 0xffffffffu));
  }

 private:
  static void Trampoline(unsigned hi, unsigned lo) {
    auto* self = reinterpret_cast<FiberContext*>((static_cast<uintptr_t>(hi) << 32) | lo);
    self->entry_(self->arg_);
    std::abort();  // entry never returns
  }
  void (*entry_)(void*) = nullptr;
  void* arg_ = nullptr;
};

inline void SwitchStacks(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }
#endif

// Saves the running execution into `from` and resumes `to`.
inline void SwitchFiber(FiberContext& from, FiberContext& to) {
#ifdef SSLINV_EMU_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, to.bounds.bottom, to.bounds.size);
  SwitchStacks(from, to);
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);  // running `from` again
#else
  SwitchStacks(from, to);
#endif
}

// The first thing a new fiber does: completes the switch that started it, and tells `starter` (the
// context on the OS thread's stack that switched to it) where that stack is.
inline void FiberEntered([[maybe_unused]] FiberContext& starter) {
#ifdef SSLINV_EMU_ASAN
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  if (starter.bounds.bottom == nullptr) starter.bounds = {bottom, size};
#endif
}

}  // namespace sslinv_emu
