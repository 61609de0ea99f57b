"""Thin command-line front ends: parse, call the library, map errors to one line."""
