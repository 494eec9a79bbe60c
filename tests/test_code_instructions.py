"""The 'code_instructions' pair format: docstring -> function pairs."""

import ast
import sys
import textwrap

import pytest

from rnnlm_jax.data import code_instructions as ci
from rnnlm_jax.data import DataError, paired
from rnnlm_jax.data.sources import stdlib as stdlib_source

MODULE = textwrap.dedent('''\
    """Module docstring: not a function."""
    import functools


    @functools.lru_cache(maxsize=None)
    def area(width: float, height: float = 1.0) -> float:
      """Area of a rectangle.

      Longer explanation that is not part of the instruction.
      """
      return width * height


    def undocumented(x):
      return x


    class Shape:
      """A class docstring is not a pair."""

      def scale(self, factor):
        """Scale the shape
        by a factor."""
        self.size *= factor
        return self

      def abstract(self):
        """Subclasses override this."""

      class Inner:
        async def fetch(self, *args, **kwargs):
          """Fetch it asynchronously."""
          text = """
    a string line indented less than the method
    """
          return text


    def outer(n):
      """Make an adder."""
      def inner(m):
        """Add n to m."""
        return n + m
      return inner
    ''')


def test_pairs_of_a_module():
  pairs, skipped = ci.extract_pairs(MODULE)
  got = {name: (instruction, response) for name, instruction, response in pairs}
  assert list(got) == ['area', 'Shape.scale', 'Shape.Inner.fetch', 'outer',
                       'outer.inner']
  assert got['area'] == ('Area of a rectangle.', (
      '@functools.lru_cache(maxsize=None)\n'
      'def area(width: float, height: float = 1.0) -> float:\n'
      '  return width * height'))
  assert got['Shape.scale'] == ('Scale the shape by a factor.', (
      'def scale(self, factor):\n  self.size *= factor\n  return self'))
  fetch = got['Shape.Inner.fetch'][1]
  assert fetch.startswith('async def fetch(self, *args, **kwargs):\n  text =')
  assert '\na string line indented less than the method\n' in fetch
  assert got['outer'] == ('Make an adder.', (
      'def outer(n):\n  def inner(m):\n    """Add n to m."""\n'
      '    return n + m\n  return inner'))
  assert got['outer.inner'] == ('Add n to m.', 'def inner(m):\n  return n + m')
  assert skipped == {'docstring_only': 1, 'unextractable': 0}
  for _, response in got.values():
    tree = ast.parse(response)
    assert ast.get_docstring(tree.body[0]) is None


def test_with_signature():
  pairs, _ = ci.extract_pairs(MODULE, with_signature=True)
  instructions = {name: text for name, text, _ in pairs}
  assert instructions['area'] == (
      'def area(width: float, height: float=1.0) -> float:\n'
      'Area of a rectangle.')
  assert instructions['Shape.Inner.fetch'] == (
      'async def fetch(self, *args, **kwargs):\nFetch it asynchronously.')


def test_one_line_docstring_with_code_is_left_out():
  pairs, skipped = ci.extract_pairs('def f():\n  "doc"; return 1\n')
  assert pairs == [] and skipped['unextractable'] == 1


def _function(i, doc):
  return f'def f{i}(x):\n  """{doc}"""\n  return x + {i}\n'


def _names_per_split(rule):
  """One file name per split under `rule` (a path -> split function)."""
  names, i = {}, 0
  while len(names) < 3:
    split = rule(f'm{i}.py')
    names.setdefault(split, f'm{i}.py')
    i += 1
  return names


@pytest.fixture
def fake_stdlib(tmp_path, monkeypatch):
  """A 'stdlib' of one file per split plus one that does not parse."""
  names = _names_per_split(stdlib_source.split_of)
  for split, name in names.items():
    body = ''.join(_function(i, f'Function {i} of the {split} file.')
                   for i in range(3))
    long = (f'def long(x):\n  """A long one in {split}."""\n'
            + '  x += 1\n' * 40 + '  return x\n')
    (tmp_path / name).write_text(body + long
                                 + _function(9, 'Shared by all files.'))
  (tmp_path / 'broken.py').write_text('def f(:\n')
  monkeypatch.setattr(stdlib_source, 'stdlib_root', lambda: tmp_path)
  return tmp_path, names


def test_stdlib_split_by_file_and_duplicates_removed(fake_stdlib):
  _, names = fake_stdlib
  raw = paired.read_pairs('code_instructions', min_response_chars=1)
  first = sorted(names.values())[0]
  for split, name in names.items():
    expected = [f'Function {i} of the {split} file.' for i in range(3)]
    expected.append(f'A long one in {split}.')
    if name == first:  # the shared function is kept in the first file only
      expected.append('Shared by all files.')
    assert raw.source[split] == expected
    assert raw.target[split][0] == 'def f0(x):\n  return x + 0'
  assert raw.info['duplicates_removed'] == 2
  assert raw.info['skipped_files'] == 1
  assert raw.info['files'] == {s: 1 for s in ('train', 'valid', 'test')}
  assert raw.info['python'].startswith(f'{sys.version_info[0]}.')


def test_length_limits(fake_stdlib):
  base = paired.read_pairs('code_instructions', min_response_chars=1)
  short = paired.read_pairs('code_instructions', min_response_chars=1,
                            max_response_chars=200)
  for split in base.source:
    assert short.source[split] == [
        x for x in base.source[split] if not x.startswith('A long one')]
    assert len(short.source[split]) == len(base.source[split]) - 1
    assert max(map(len, short.target[split])) <= 200
  assert short.info['outside_length_limits'] == 3
  assert base.info['outside_length_limits'] == 0
  assert short.fingerprint != base.fingerprint
  no_short = paired.read_pairs('code_instructions', min_response_chars=27)
  assert all(len(x) >= 27 for s in no_short.target.values() for x in s)
  with pytest.raises(DataError, match='no train pairs'):
    paired.read_pairs('code_instructions', min_response_chars=10_000)


def test_packages_split_by_their_path(tmp_path, monkeypatch):
  package = tmp_path / 'toypkg'
  package.mkdir()
  names = _names_per_split(lambda rel: stdlib_source.split_of(f'toypkg/{rel}'))
  for split, name in names.items():
    (package / name).write_text(_function(1, f'The {split} one.'))
  (package / '__init__.py').write_text('')
  monkeypatch.syspath_prepend(str(tmp_path))
  raw = paired.read_pairs('code_instructions', code_stdlib=False,
                          code_packages=('toypkg',), min_response_chars=1)
  assert {s: raw.source[s] for s in names} == {
      s: [f'The {s} one.'] for s in names}
  assert raw.name == 'code:toypkg'
  assert raw.info['package_versions'] == {'toypkg': None}
  with pytest.raises(DataError, match="'no_such_pkg_xyz' is not installed"):
    paired.read_pairs('code_instructions', code_packages=('no_such_pkg_xyz',))


def test_unknown_format_is_named():
  with pytest.raises(DataError, match="data.paired.format='code_instruction'"
                     ".*did you mean 'code_instructions'"):
    paired.read_pairs('code_instruction')
