# The half-open TCP prober's native part (native/syn.c), built by `npm ci` (the install script) and
# `make build` into build/Release/syn.node; src/probe/syn.ts loads it.
{
  "targets": [
    {
      "target_name": "syn",
      "sources": ["native/syn.c"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
