# Runs a SIPVicious tool (Debian's sipvicious 0.3.3) the way a careful
# attacker would (TestAttackSIPVicious):
#
#   run.py TOOL [--user-agent UA] [--bind IP] TOOL-ARGS...
#
# --user-agent replaces its User-Agent, "friendly-scanner", which Outpost
# drops unanswered (registrar.DropScanners), with UA: the test then shows
# what the node gives away when the scanner is not recognised. --bind
# makes svwar and svcrack send from IP (their -b option is parsed but not
# used in 0.3.3), so the attack comes from a source of its own.
import sys

sys.path.insert(0, "/usr/share/sipvicious")
from sipvicious.libs import svhelper  # noqa: E402

tool, args = sys.argv[1], sys.argv[2:]
ua = bind = None
while args and args[0] in ("--user-agent", "--bind"):
    if args[0] == "--user-agent":
        ua = args[1]
    else:
        bind = args[1]
    args = args[2:]

if ua is not None:
    d = list(svhelper.makeRequest.__defaults__)
    d[d.index("friendly-scanner")] = ua
    svhelper.makeRequest.__defaults__ = tuple(d)

mod = __import__("sipvicious." + tool, fromlist=["main"])
if bind is not None:
    cls = {"svwar": "TakeASip", "svcrack": "ASipOfRedWine"}.get(tool)
    if cls is not None:
        init = getattr(mod, cls).__init__
        names = init.__code__.co_varnames[1:init.__code__.co_argcount]
        d = list(init.__defaults__)
        d[names.index("bindingip") - (len(names) - len(d))] = bind
        init.__defaults__ = tuple(d)
    else:
        args = ["-b", bind] + args

sys.argv = [tool] + args
mod.main()
