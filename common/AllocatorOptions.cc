// jemalloc's options for the daemons, compiled into each of them when they link it
// (CMakeLists.txt, dspy_allocator). jemalloc reads them at its first allocation; the
// MALLOC_CONF environment variable still overrides any of them.
//
// By default jemalloc hands freed memory back to the system only from the threads that
// keep allocating: a daemon that went quiet after a burst (a large batch, an HTTP header
// flood it refused) kept that memory for good (python/tests/test_hostile.py measured
// +32 MB still there after 16 s). Its background thread purges on its own schedule (the
// default decay: freed pages go back gradually over about ten seconds; a flood's 32 MB
// were below 30 MB after 4 s and gone after 24 s). A one-second decay returned it
// sooner but cost B2b batches up to a tenth of their throughput; this setting cost
// none measurable (docs/benchmarks.md, B2b).
extern "C" {
// The name and type jemalloc looks for (a weak definition in its archive).
__attribute__((used)) const char* malloc_conf = "background_thread:true";
}
