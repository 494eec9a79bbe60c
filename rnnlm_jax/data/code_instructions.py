"""The 'code_instructions' pair format: docstring -> function pairs.

From the Python source of the standard library (and optionally of installed
packages), every function and method (nested ones and methods of nested
classes included) that has a docstring becomes one pair:
  * instruction: the first paragraph of the docstring (inspect.cleandoc'ed,
    its lines joined by single spaces); with `with_signature`, prefixed by
    the signature line, e.g. 'def split(self, sep=None) -> list:\\n' + text;
  * response: the function's source, decorators included, dedented by the
    indentation of its first line, *with its docstring removed*. It always
    parses (checked). A function whose body is only its docstring (stubs,
    abstract methods) is skipped: 'def f(self):\\n  pass' teaches nothing.
    Nested functions keep their own docstrings inside the outer response.

Splits are by file, never within one: a stdlib file goes where
sources/stdlib.py's split_of(relative path) puts it, i.e. the SAME split as
the 'stdlib' language-model corpus, so a code LM pretrained on the stdlib
train split has never seen a valid or test function. Package files use the
same md5 rule on 'package/relative/path'. Exact duplicate pairs are removed
globally, the first kept, in file order (the stdlib's sorted files, then
each package's in the order given). Files that cannot be read, decoded or
parsed are skipped and counted, as are the pairs left out for each reason;
RawPairs.info holds the counts and versions.
"""

import ast
import importlib.metadata
import importlib.util
import pathlib
import platform
import warnings
from typing import Iterator, Sequence

from rnnlm_jax.data import paired_sources
from rnnlm_jax.data.corpus import md5_of, SPLITS
from rnnlm_jax.data.errors import DataError
from rnnlm_jax.data.sources import stdlib as stdlib_source

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def defaults() -> dict:
  """This format's settings (keys of paired.defaults())."""
  return dict(code_stdlib=True, code_packages=(), with_signature=False,
              min_instruction_chars=8, max_instruction_chars=1000,
              min_response_chars=16, max_response_chars=2000)


def first_paragraph(docstring: str) -> str:
  """The text up to the first blank line, its lines joined by spaces."""
  lines = []
  for line in docstring.strip().splitlines():
    if not line.strip():
      break
    lines.append(line.strip())
  return ' '.join(lines)


def signature(node) -> str:
  """'def name(args) -> ret:' of a FunctionDef / AsyncFunctionDef."""
  prefix = 'async def' if isinstance(node, ast.AsyncFunctionDef) else 'def'
  returns = f' -> {ast.unparse(node.returns)}' if node.returns else ''
  return f'{prefix} {node.name}({ast.unparse(node.args)}){returns}:'


def _functions(tree) -> Iterator:
  """Every function node of `tree`, in source order (outer before inner)."""
  for node in ast.iter_child_nodes(tree):
    if isinstance(node, _FUNCTIONS):
      yield node
    yield from _functions(node)


def _response(lines: list[str], node) -> str | None:
  """The function's source without its docstring, or None if it cannot be
  cut out cleanly (docstring sharing a line with code, odd indentation)."""
  doc = node.body[0]
  first = min([node.lineno] + [d.lineno for d in node.decorator_list])
  start_line = lines[first - 1]
  indent = start_line[:len(start_line) - len(start_line.lstrip())]
  if not start_line.strip().startswith(('@', 'def', 'async')):
    return None  # e.g. 'if x: def f(): ...' on one line
  if (lines[doc.lineno - 1][:doc.col_offset].strip()
      or lines[doc.end_lineno - 1][doc.end_col_offset:].strip()):
    return None  # 'def f(): "doc"' or '"doc"; x = 1'
  last = lines[node.end_lineno - 1][:node.end_col_offset]
  body = (lines[first - 1:doc.lineno - 1]
          + lines[doc.end_lineno:node.end_lineno - 1] + [last])
  # Lines inside a multi-line string may be indented less: left as they are.
  out = [x[len(indent):] if x.startswith(indent) else x for x in body]
  return '\n'.join(out).rstrip()


def extract_pairs(source: str, with_signature: bool = False
                  ) -> tuple[list[tuple[str, str, str]], dict]:
  """(qualified name, instruction, response) of each documented function.

  Args:
    source: Python source text (raises SyntaxError / ValueError if it does
      not parse).
    with_signature: prefix the instruction with the signature line.

  Returns:
    (pairs in source order, {reason: count} of the functions left out:
    'docstring_only', 'unextractable').
  """
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # invalid escapes etc. in old code
    tree = ast.parse(source)
  lines = source.splitlines()
  names = _qualified_names(tree)
  pairs, skipped = [], {'docstring_only': 0, 'unextractable': 0}
  for node in _functions(tree):
    doc = ast.get_docstring(node, clean=True)
    if doc is None:
      continue
    if len(node.body) == 1:
      skipped['docstring_only'] += 1
      continue
    response = _response(lines, node)
    if response is not None:
      try:
        with warnings.catch_warnings():
          warnings.simplefilter('ignore')
          ast.parse(response)
      except (SyntaxError, ValueError):
        response = None
    if response is None:
      skipped['unextractable'] += 1
      continue
    instruction = first_paragraph(doc)
    if with_signature:
      instruction = f'{signature(node)}\n{instruction}'
    pairs.append((names[node], instruction, response))
  return pairs, skipped


def _qualified_names(tree) -> dict:
  names = {}

  def visit(node, prefix):
    for child in ast.iter_child_nodes(node):
      if isinstance(child, _FUNCTIONS + (ast.ClassDef,)):
        names[child] = prefix + child.name
        visit(child, names[child] + '.')
      else:
        visit(child, prefix)

  visit(tree, '')
  return names


def package_root(name: str) -> tuple[pathlib.Path, list[str]]:
  """(directory, sorted relative *.py paths) of an installed package."""
  try:
    spec = importlib.util.find_spec(name)
  except (ImportError, ValueError) as e:
    raise DataError(f'data.paired.code_packages: cannot find package {name!r}'
                    f' ({e})') from None
  if spec is None or not (spec.submodule_search_locations or spec.origin):
    raise DataError(f'data.paired.code_packages: package {name!r} is not '
                    'installed (importlib.util.find_spec found nothing)')
  if spec.submodule_search_locations:
    root = pathlib.Path(list(spec.submodule_search_locations)[0])
    return root, stdlib_source.list_files(root)
  origin = pathlib.Path(spec.origin)
  if origin.suffix != '.py':
    raise DataError(f'data.paired.code_packages: {name!r} is {origin}, not '
                    'Python source')
  return origin.parent, [origin.name]


def _version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def source_files(stdlib: bool, packages: Sequence[str]
                 ) -> list[tuple[str, str, pathlib.Path]]:
  """(split, key, path) of every file read, in order; key: the stdlib
  relative path, or 'package/relative/path'."""
  files = []
  if stdlib:
    root = stdlib_source.stdlib_root()
    files += [(stdlib_source.split_of(rel), rel, root / rel)
              for rel in stdlib_source.list_files(root)]
  for name in packages:
    root, rels = package_root(name)
    for rel in rels:
      key = f'{name}/{rel}'
      files.append((stdlib_source.split_of(key), key, root / rel))
  return files


def within_limits(text: str, low: int, high: int) -> bool:
  """low <= len(text) <= high; high 0: no upper limit."""
  return len(text) >= low and (not high or len(text) <= high)


def _collect(files, with_signature: bool, limits: tuple):
  """({split: instructions}, {split: responses}, counts, fingerprint parts)
  of `files` ((split, key, path)); limits: (min, max) instruction chars,
  then (min, max) response chars."""
  source = {s: [] for s in SPLITS}
  target = {s: [] for s in SPLITS}
  counts = {'files': dict.fromkeys(SPLITS, 0),
            'functions': dict.fromkeys(SPLITS, 0),
            'skipped_files': 0, 'duplicates_removed': 0, 'docstring_only': 0,
            'unextractable': 0, 'outside_length_limits': 0}
  seen, parts = set(), []
  for split, key, path in files:
    try:
      text = path.read_bytes().decode('utf-8')
      pairs, skipped = extract_pairs(text, with_signature)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError,
            RecursionError):
      counts['skipped_files'] += 1
      continue
    counts['files'][split] += 1
    for reason, n in skipped.items():
      counts[reason] += n
    for _, instruction, response in pairs:
      if not (within_limits(instruction, *limits[:2])
              and within_limits(response, *limits[2:])):
        counts['outside_length_limits'] += 1
      elif (instruction, response) in seen:
        counts['duplicates_removed'] += 1
      else:
        seen.add((instruction, response))
        source[split].append(instruction)
        target[split].append(response)
        counts['functions'][split] += 1
        parts += [split, key, instruction, response]
  return source, target, counts, parts


def load_code_instructions(stdlib: bool = True, packages: Sequence[str] = (),
                           with_signature: bool = False,
                           min_instruction_chars: int = 8,
                           max_instruction_chars: int = 1000,
                           min_response_chars: int = 16,
                           max_response_chars: int = 2000
                           ) -> paired_sources.RawPairs:
  """RawPairs of (instruction, function source) from the stdlib / packages.

  Length limits are in characters, on the final strings (0 as a max: no
  limit). See the module docstring for the rules.
  """
  packages = tuple(packages)
  if not stdlib and not packages:
    raise DataError('data.paired.code_stdlib=False and no '
                    'data.paired.code_packages: there is no code to read')
  limits = (min_instruction_chars, max_instruction_chars, min_response_chars,
            max_response_chars)
  source, target, counts, parts = _collect(source_files(stdlib, packages),
                                           with_signature, limits)
  for split in SPLITS:
    if not source[split]:
      raise DataError(f'code_instructions: no {split} pairs (read '
                      f'{counts["files"][split]} {split} files, skipped '
                      f'{counts["skipped_files"]} unparsable files); widen the '
                      'length limits or add data.paired.code_packages')
  settings = dict(stdlib=stdlib, packages=packages,
                  with_signature=with_signature,
                  instruction_chars=limits[:2], response_chars=limits[2:])
  info = dict(format='code_instructions', python=platform.python_version(),
              package_versions={p: _version(p) for p in packages},
              settings=settings, **counts)
  names = (['stdlib'] if stdlib else []) + list(packages)
  return paired_sources.RawPairs(
      name='code:' + '+'.join(names), source=source, target=target,
      fingerprint=md5_of(['code_instructions', repr(settings)] + parts),
      info=info)


def _read(s: dict) -> paired_sources.RawPairs:
  packages = s['code_packages']
  packages = (packages,) if isinstance(packages, str) else tuple(packages)
  return load_code_instructions(
      stdlib=bool(s['code_stdlib']), packages=packages,
      with_signature=bool(s['with_signature']),
      min_instruction_chars=int(s['min_instruction_chars']),
      max_instruction_chars=int(s['max_instruction_chars']),
      min_response_chars=int(s['min_response_chars']),
      max_response_chars=int(s['max_response_chars']))


paired_sources.PAIR_FORMATS.register('code_instructions', _read)
