"""The demo upstream server and commands of sysup (the generator moved to asud.demo)."""
