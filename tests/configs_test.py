"""The config-file loader and the ``:arg`` parser."""

from __future__ import annotations

import pytest

from attnlab import configs


def test_parse_and_join_arg():
  parsed = configs.parse_arg("model=lstm, task=copy,smoke")
  assert parsed == {"model": "lstm", "task": "copy", "smoke": True}
  assert configs.join_arg(parsed) == "model=lstm,task=copy,smoke"
  assert configs.parse_arg("") == {}
  with pytest.raises(ValueError, match=r"unknown key\(s\) \['modle'\].*allowed"):
    configs.parse_arg("modle=lstm", allowed=("model", "smoke"))


def test_load_config_file_passes_the_arg_and_names_a_missing_file(tmp_path):
  path = tmp_path / "cfg.py"
  path.write_text("def get_config(arg=None):\n  return {'arg': arg}\n")
  assert configs.load_config_file(f"{path}:a=1") == {"arg": "a=1"}
  assert configs.load_config_file(str(path)) == {"arg": None}
  with pytest.raises(ValueError, match="nope.py.*does not exist"):
    configs.load_config_file(str(tmp_path / "nope.py"))
