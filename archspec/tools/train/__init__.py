"""tools/train"""
