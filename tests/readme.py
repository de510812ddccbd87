"""The shell commands of README.md, as the tests that exercise them read them."""

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def shell_blocks() -> list[str]:
    """The text of every ```sh block, in order."""
    return re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)


def shell_block_containing(needle: str) -> str:
    (block,) = [block for block in shell_blocks() if needle in block]
    return block


def _complete(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:  # a quoted argument goes on over the next line
        return False
    return True


def commands() -> list[str]:
    """Every command of every block: continued lines joined, comments and blanks dropped."""
    found = []
    for block in shell_blocks():
        pending = ""
        for line in re.sub(r"\\\n\s*", "", block).splitlines():
            pending = f"{pending} {line.strip()}" if pending else line.split(" # ")[0].strip()
            if pending.startswith("#"):
                pending = ""
            elif pending and _complete(pending):
                found.append(pending)
                pending = ""
    return found


def command_starting(prefix: str) -> str:
    (command,) = [command for command in commands() if command.startswith(prefix)]
    return command
