package controllers

import (
	"github.com/dlcsync/dlcsync/internal/dlc"
)

// ListerFactory builds the PAI-DLC lister of a JobQuery: dlc.Pool in the manager, a fake or a
// counting wrapper in unit tests.
type ListerFactory interface {
	Lister(cfg dlc.Config) (dlc.Lister, error)
}
