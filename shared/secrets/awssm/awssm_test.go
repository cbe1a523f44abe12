package awssm

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestEndpoint(t *testing.T) {
	tests := []struct {
		name, id, region, want string
	}{
		{"Name", "wxnotify", "us-east-1", "https://secretsmanager.us-east-1.amazonaws.com/"},
		{"China", "wxnotify", "cn-north-1", "https://secretsmanager.cn-north-1.amazonaws.com.cn/"},
		{"ARNRegionWins", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wxnotify-AbCdEf", "us-east-1",
			"https://secretsmanager.eu-west-1.amazonaws.com/"},
		{"ChinaARN", "arn:aws-cn:secretsmanager:cn-northwest-1:123456789012:secret:wxnotify-AbCdEf", "",
			"https://secretsmanager.cn-northwest-1.amazonaws.com.cn/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{SecretID: tt.id, Region: tt.region, HTTPClient: http.DefaultClient,
				Credentials: aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Endpoint(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
