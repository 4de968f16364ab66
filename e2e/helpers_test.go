package e2e

import "github.com/ipveil/ipveil/e2e/mockrep"

type mockrepFixture = mockrep.Fixture
