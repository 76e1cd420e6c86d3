package main

// The module plugins, as `golangci-lint custom` generates this file from .custom-gcl.yml: the root
// package of sigs.k8s.io/kube-api-linter registers the "kubeapilinter" linter in its init.
import (
	_ "sigs.k8s.io/kube-api-linter"
)
